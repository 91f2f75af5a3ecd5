// Tools and text.format of /v1/responses and /v1/messages, mapped onto the chat
// path's machinery (chat_tools.ts: tool_choice modes, the grammar of "required"
// and named choices, the tool-call and reasoning parsers) and structured outputs.
import { InvalidRequestError } from '../../errors.js';
import type { StructuredOutputsParams } from '../../structured_output/params.js';
import type { ChatCompletionRequest } from './protocol.js';
import type { ResponsesRequest } from './protocol_responses.js';

type ChatToolFields = Pick<ChatCompletionRequest, 'tools' | 'tool_choice' | 'parallel_tool_calls'>;

/** Responses' flat function tools and tool_choice -> chat completions' nested ones. */
export function responsesChatTools(req: ResponsesRequest): ChatToolFields {
  const tools = (req.tools ?? []).map((t, i) => {
    if (t.type !== 'function') {
      throw new InvalidRequestError(`tools[${i}] has type '${t.type}': this server takes function tools only.`, `tools.${i}.type`);
    }
    if (!t.name) throw new InvalidRequestError(`tools[${i}] needs a name`, `tools.${i}.name`);
    return { type: 'function', function: { name: t.name, description: t.description ?? undefined, parameters: t.parameters ?? undefined } };
  });
  const choice = req.tool_choice;
  let toolChoice: ChatCompletionRequest['tool_choice'] = undefined;
  if (typeof choice === 'string') toolChoice = choice;
  else if (choice) {
    if (choice.type !== 'function' || !choice.name) {
      throw new InvalidRequestError(`tool_choice of type '${choice.type}' is not supported; use "none", "auto", "required" or {"type": "function", "name": ...}.`, 'tool_choice');
    }
    toolChoice = { type: 'function', function: { name: choice.name } };
  }
  return { tools: tools.length ? tools : undefined, tool_choice: toolChoice, parallel_tool_calls: req.parallel_tool_calls ?? undefined };
}

/** text.format -> the structured-output constraint (json_schema, json_object), or null for text. */
export function textFormatConstraint(req: ResponsesRequest): StructuredOutputsParams | null {
  const f = req.text?.format;
  if (!f || f.type === 'text') return null;
  if (f.type === 'json_object') return { jsonObject: true };
  if (!f.schema) throw new InvalidRequestError('text.format of type json_schema needs a schema', 'text.format.schema');
  return { json: f.schema };
}
