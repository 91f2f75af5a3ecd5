// POST /v1/messages and /v1/messages/count_tokens (vLLM's AnthropicServingMessages):
// the Anthropic request becomes chat messages rendered by the same chat template
// as /v1/chat/completions, one generation on AsyncLLM, answered as a `message` or
// as Anthropic's event stream (message_start, ping, content_block_*, message_delta,
// message_stop). Errors leave in Anthropic's shape (anthropicError).
import type { ServerResponse } from 'node:http';
import type { AsyncLLM } from '../../engine/async_llm.js';
import { InvalidRequestError } from '../../errors.js';
import type { RequestOutput } from '../../outputs.js';
import { sendJson, toErrorInfo } from '../openai/http.js';
import { NamedSseWriter } from '../openai/named_sse.js';
import type { ChatCompletionRequest, ChatMessageParam } from '../openai/protocol.js';
import type { OpenAIServingChat } from '../openai/serving_chat.js';
import { OpenAIServing, randomId, type ServingOptions, type TokenizedPrompt } from '../openai/serving_engine.js';
import {
  anthropicErrorType,
  type AnthropicErrorBody,
  type AnthropicMessage,
  type AnthropicUsage,
  type ContentBlockParam,
  type CountTokensRequest,
  type MessageParam,
  type MessagesRequest,
  type StopReason,
} from './protocol.js';

/** Any error as Anthropic's error body, with its HTTP status. */
export function anthropicError(err: unknown): { status: number; body: AnthropicErrorBody } {
  const info = toErrorInfo(err);
  return { status: info.code, body: { type: 'error', error: { type: anthropicErrorType(info.code), message: info.message } } };
}

function blockText(b: ContentBlockParam, where: string): string {
  if (typeof b.content === 'string') return b.content;
  return (b.content ?? [])
    .map((c, j) => {
      if (c.type === 'text' && typeof c.text === 'string') return c.text;
      throw new InvalidRequestError(`${where}.content[${j}] has type '${c.type}': this server serves a text-only model.`, `${where}.content`);
    })
    .join('\n');
}

/** One Anthropic message -> chat messages (tool results become 'tool' messages ahead of the user's text). */
function appendMessage(out: ChatMessageParam[], m: MessageParam, i: number): void {
  if (typeof m.content === 'string') {
    out.push({ role: m.role, content: m.content });
    return;
  }
  const texts: string[] = [];
  const toolCalls: unknown[] = [];
  m.content.forEach((b, j) => {
    const where = `messages[${i}].content[${j}]`;
    if (b.type === 'text' && typeof b.text === 'string') texts.push(b.text);
    else if (b.type === 'tool_use' && m.role === 'assistant') {
      toolCalls.push({ id: b.id ?? `toolu_${randomId()}`, type: 'function', function: { name: b.name ?? '', arguments: JSON.stringify(b.input ?? {}) } });
    } else if (b.type === 'tool_result' && m.role === 'user') {
      out.push({ role: 'tool', tool_call_id: b.tool_use_id ?? '', content: blockText(b, where) });
    } else if (b.type === 'thinking' || b.type === 'redacted_thinking') {
      // NOTE: earlier thinking is not shown to the model again.
    } else {
      throw new InvalidRequestError(
        `${where} has type '${b.type}' in a ${m.role} message: this server takes text, tool_use (assistant) and tool_result (user) blocks.`,
        `messages.${i}.content.${j}.type`,
      );
    }
  });
  if (texts.length > 0 || toolCalls.length > 0 || m.content.length === 0) {
    out.push({ role: m.role, content: texts.join('\n'), ...(toolCalls.length ? { tool_calls: toolCalls } : {}) });
  }
}

function stopReason(o: RequestOutput['outputs'][number]): { reason: StopReason; sequence: string | null } {
  if (o.finishReason === 'length') return { reason: 'max_tokens', sequence: null };
  if (typeof o.stopReason === 'string') return { reason: 'stop_sequence', sequence: o.stopReason };
  return { reason: 'end_turn', sequence: null };
}

export class AnthropicServingMessages extends OpenAIServing {
  constructor(
    engine: AsyncLLM,
    opts: ServingOptions,
    private readonly chat: OpenAIServingChat,
  ) {
    super(engine, opts);
  }

  private async render(req: CountTokensRequest): Promise<TokenizedPrompt> {
    this.checkModel(req.model);
    if (req.messages.length === 0) throw new InvalidRequestError('messages: at least one message is required', 'messages');
    if ((req.tools?.length ?? 0) > 0 && req.tool_choice?.type !== 'none') {
      throw new InvalidRequestError('Tool use is not supported by this server yet (no tool-call parser); leave tools unset or set tool_choice to {"type": "none"}.', 'tools');
    }
    const messages: ChatMessageParam[] = [];
    const system = typeof req.system === 'string' ? req.system : (req.system ?? []).map((b) => b.text).join('\n');
    if (system) messages.push({ role: 'system', content: system });
    req.messages.forEach((m, i) => appendMessage(messages, m, i));
    return this.chat.renderChat({ messages } as ChatCompletionRequest);
  }

  /** POST /v1/messages/count_tokens. */
  async countTokens(req: CountTokensRequest, res: ServerResponse): Promise<void> {
    sendJson(res, 200, { input_tokens: (await this.render(req)).promptTokenIds.length });
  }

  async create(req: MessagesRequest, res: ServerResponse, signal: AbortSignal, headerRequestId?: string): Promise<void> {
    if (req.max_tokens < 1) throw new InvalidRequestError(`max_tokens: must be at least 1, got ${req.max_tokens}`, 'max_tokens');
    const rendered = await this.render(req);
    const opt = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);
    const params = this.samplingParams(
      { temperature: opt(req.temperature), topP: opt(req.top_p), topK: opt(req.top_k), stop: req.stop_sequences ?? [], maxTokens: req.max_tokens, outputKind: 'delta' },
      rendered.promptTokenIds.length,
    );
    const id = `msg_${headerRequestId ?? randomId()}`;
    const gen = this.generate(id, rendered, params, signal, {});
    if (req.stream) await this.stream(id, gen, res);
    else await this.full(id, gen, res);
  }

  private anthropicUsage(out: RequestOutput, outputTokens: number): AnthropicUsage {
    // NOTE: as Anthropic counts them, input_tokens leaves out the tokens read from the (prefix) cache.
    const cached = out.numCachedTokens;
    return { input_tokens: out.promptTokenIds.length - cached, output_tokens: outputTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: cached };
  }

  private async full(id: string, gen: AsyncGenerator<RequestOutput, void>, res: ServerResponse): Promise<void> {
    let text = '';
    let tokens = 0;
    let last: RequestOutput | null = null;
    for await (const out of gen) {
      last = out;
      text += out.outputs[0].text;
      tokens += out.outputs[0].tokenIds.length;
    }
    if (last === null) throw new Error(`request ${id} ended without an output`);
    const stop = stopReason(last.outputs[0]);
    const body: AnthropicMessage = {
      id,
      type: 'message',
      role: 'assistant',
      model: this.modelName,
      content: text === '' ? [] : [{ type: 'text', text, citations: null }],
      stop_reason: stop.reason,
      stop_sequence: stop.sequence,
      usage: this.anthropicUsage(last, tokens),
    };
    sendJson(res, 200, body);
  }

  private async stream(id: string, gen: AsyncGenerator<RequestOutput, void>, res: ServerResponse): Promise<void> {
    const sse = new NamedSseWriter(res);
    const send = (type: string, fields: Record<string, unknown> = {}) => sse.send(type, { type, ...fields });
    let tokens = 0;
    let blockOpen = false;
    let last: RequestOutput | null = null;
    try {
      for await (const out of gen) {
        if (last === null) {
          const message = { id, type: 'message', role: 'assistant', model: this.modelName, content: [], stop_reason: null, stop_sequence: null, usage: this.anthropicUsage(out, 0) };
          await send('message_start', { message });
          await send('ping');
        }
        last = out;
        const o = out.outputs[0];
        tokens += o.tokenIds.length;
        if (o.text === '') continue;
        if (!blockOpen) {
          blockOpen = true;
          await send('content_block_start', { index: 0, content_block: { type: 'text', text: '', citations: null } });
        }
        await send('content_block_delta', { index: 0, delta: { type: 'text_delta', text: o.text } });
      }
      if (last === null) throw new Error(`request ${id} ended without an output`);
      if (blockOpen) await send('content_block_stop', { index: 0 });
      const stop = stopReason(last.outputs[0]);
      const usage = this.anthropicUsage(last, tokens);
      await send('message_delta', { delta: { stop_reason: stop.reason, stop_sequence: stop.sequence }, usage: { ...usage, server_tool_use: null } });
      await send('message_stop');
    } catch (e) {
      if (res.destroyed) return;
      await send('error', { error: anthropicError(e).body.error });
    }
    sse.end();
  }
}
