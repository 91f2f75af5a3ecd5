// Responses API input -> the chat messages a chat template renders (vLLM's
// construct_chat_messages for /v1/responses): `instructions` as the system
// message, the stored conversation of `previous_response_id` and its output,
// then the new input items (messages, function_call, function_call_output).
import { InvalidRequestError } from '../../errors.js';
import type { ChatMessageParam } from './protocol.js';
import type { OutputItem, ResponseInputItem } from './protocol_responses.js';

type Part = { type: string; text?: string | null; refusal?: unknown };

function partsText(parts: string | Part[], where: string): string {
  if (typeof parts === 'string') return parts;
  return parts
    .map((p, j) => {
      if ((p.type === 'input_text' || p.type === 'output_text' || p.type === 'text') && typeof p.text === 'string') return p.text;
      if (p.type === 'refusal' && typeof p.refusal === 'string') return p.refusal;
      throw new InvalidRequestError(
        `${where}.content[${j}] has type '${p.type}': this server serves a text-only model; send input_text parts only.`,
        `${where}.content`,
      );
    })
    .join('\n');
}

/** The assistant message the next function_call joins (consecutive calls are one assistant turn). */
function lastAssistantWithCalls(messages: ChatMessageParam[]): ChatMessageParam | null {
  const last = messages.at(-1);
  return last && last.role === 'assistant' ? last : null;
}

function addFunctionCall(messages: ChatMessageParam[], call: { call_id: string; name: string; arguments: string }): void {
  const toolCall = { id: call.call_id, type: 'function', function: { name: call.name, arguments: call.arguments } };
  const prev = lastAssistantWithCalls(messages);
  if (prev) prev.tool_calls = [...((prev.tool_calls as unknown[] | undefined) ?? []), toolCall];
  else messages.push({ role: 'assistant', content: '', tool_calls: [toolCall] });
}

/** Input items -> chat messages, appended to `messages`. */
export function appendInputItems(messages: ChatMessageParam[], input: string | ResponseInputItem[]): void {
  if (typeof input === 'string') {
    messages.push({ role: 'user', content: input });
    return;
  }
  input.forEach((item, i) => {
    const where = `input[${i}]`;
    const type = item.type ?? 'message';
    if (type === 'message' && 'role' in item) {
      const it = item as { role: string; content: string | Part[] };
      // NOTE: chat templates know 'system', not OpenAI's 'developer'.
      const role = it.role === 'developer' ? 'system' : it.role;
      messages.push({ role, content: partsText(it.content, where) });
    } else if (type === 'function_call') {
      addFunctionCall(messages, item as { call_id: string; name: string; arguments: string });
    } else if (type === 'function_call_output') {
      const it = item as { call_id: string; output: string | Part[] };
      messages.push({ role: 'tool', tool_call_id: it.call_id, content: partsText(it.output, where) });
    } else if (type === 'reasoning') {
      // NOTE: as vLLM, earlier reasoning is not shown to the model again.
    } else {
      throw new InvalidRequestError(
        `${where} has type '${type}': this server takes message, function_call, function_call_output and reasoning items.`,
        `input.${i}.type`,
      );
    }
  });
}

/** A response's output items as the chat messages a continuation (previous_response_id) sees. */
export function appendOutputItems(messages: ChatMessageParam[], output: OutputItem[]): void {
  for (const item of output) {
    if (item.type === 'message') {
      const text = item.content.map((c) => c.text).join('');
      const prev = lastAssistantWithCalls(messages);
      if (prev && prev.content === '' && !prev.tool_calls) prev.content = text;
      else messages.push({ role: 'assistant', content: text });
    } else if (item.type === 'function_call') {
      addFunctionCall(messages, item);
    }
  }
}
