// POST /v1/messages and /v1/messages/count_tokens (vLLM's AnthropicServingMessages):
// the Anthropic request becomes chat messages rendered by the same chat template
// as /v1/chat/completions, one generation on AsyncLLM, answered as a `message` or
// as Anthropic's event stream (message_start, ping, content_block_*, message_delta,
// message_stop). Errors leave in Anthropic's shape (anthropicError).
import type { ServerResponse } from 'node:http';
import type { AsyncLLM } from '../../engine/async_llm.js';
import { InvalidRequestError } from '../../errors.js';
import type { RequestOutput } from '../../outputs.js';
import { sendJson, SseWriter, toErrorInfo } from '../openai/http.js';
import { ChatOutputParser, type ChatDelta, toolGrammar, toolMode, type ToolOptions } from '../openai/chat_tools.js';
import { MessageBlockBuilder } from './message_blocks.js';
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

function stopReason(o: RequestOutput['outputs'][number], usedTools: boolean): { reason: StopReason; sequence: string | null } {
  if (usedTools && o.finishReason !== 'length') return { reason: 'tool_use', sequence: null };
  if (o.finishReason === 'length') return { reason: 'max_tokens', sequence: null };
  if (typeof o.stopReason === 'string') return { reason: 'stop_sequence', sequence: o.stopReason };
  return { reason: 'end_turn', sequence: null };
}

/** Anthropic's tools (input_schema) and tool_choice (auto / any / tool / none) -> chat completions' ones. */
function anthropicChatTools(req: CountTokensRequest): Pick<ChatCompletionRequest, 'tools' | 'tool_choice' | 'parallel_tool_calls'> {
  const tools = (req.tools ?? []).map((t, i) => {
    if (t.type && t.type !== 'custom') {
      throw new InvalidRequestError(`tools[${i}] has type '${t.type}': this server takes client tools (name, description, input_schema) only.`, `tools.${i}.type`);
    }
    return { type: 'function', function: { name: t.name, description: t.description ?? undefined, parameters: t.input_schema ?? { type: 'object' } } };
  });
  const c = req.tool_choice;
  if (c?.type === 'tool' && !c.name) throw new InvalidRequestError('tool_choice of type "tool" needs a name', 'tool_choice.name');
  const choice = c === null || c === undefined ? undefined
    : c.type === 'any' ? 'required' : c.type === 'tool' ? { type: 'function', function: { name: c.name } } : c.type;
  return { tools: tools.length ? tools : undefined, tool_choice: choice, parallel_tool_calls: c?.disable_parallel_tool_use ? false : undefined };
}

export class AnthropicServingMessages extends OpenAIServing {
  constructor(
    engine: AsyncLLM,
    opts: ServingOptions,
    private readonly chat: OpenAIServingChat,
  ) {
    super(engine, opts);
  }

  private get toolOptions(): ToolOptions {
    return {
      enableAutoToolChoice: this.opts.enableAutoToolChoice ?? false,
      toolCallParser: this.opts.toolCallParser ?? null,
      reasoningParser: this.engine.args.reasoningParser ?? null,
    };
  }

  private async render(req: CountTokensRequest): Promise<{ prompt: TokenizedPrompt; chatReq: ChatCompletionRequest }> {
    this.checkModel(req.model);
    if (req.messages.length === 0) throw new InvalidRequestError('messages: at least one message is required', 'messages');
    const messages: ChatMessageParam[] = [];
    const system = typeof req.system === 'string' ? req.system : (req.system ?? []).map((b) => b.text).join('\n');
    if (system) messages.push({ role: 'system', content: system });
    req.messages.forEach((m, i) => appendMessage(messages, m, i));
    const chatReq = { messages, ...anthropicChatTools(req) } as ChatCompletionRequest;
    return { prompt: await this.chat.renderChat(chatReq), chatReq };
  }

  /** POST /v1/messages/count_tokens. */
  async countTokens(req: CountTokensRequest, res: ServerResponse): Promise<void> {
    sendJson(res, 200, { input_tokens: (await this.render(req)).prompt.promptTokenIds.length });
  }

  async create(req: MessagesRequest, res: ServerResponse, signal: AbortSignal, headerRequestId?: string): Promise<void> {
    if (req.max_tokens < 1) throw new InvalidRequestError(`max_tokens: must be at least 1, got ${req.max_tokens}`, 'max_tokens');
    const { prompt: rendered, chatReq } = await this.render(req);
    const toolOpts = this.toolOptions;
    const mode = toolMode(chatReq, toolOpts);
    const parser = mode.kind === 'none' && !toolOpts.reasoningParser ? null
      : new ChatOutputParser(mode, toolOpts, this.reasoningContext(rendered.promptTokenIds));
    const opt = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);
    const params = this.samplingParams(
      { temperature: opt(req.temperature), topP: opt(req.top_p), topK: opt(req.top_k), stop: req.stop_sequences ?? [], maxTokens: req.max_tokens, outputKind: 'delta',
        structuredOutputs: toolGrammar(chatReq, mode) },
      rendered.promptTokenIds.length,
    );
    const id = `msg_${headerRequestId ?? randomId()}`;
    const gen = this.generate(id, rendered, params, signal, {});
    if (req.stream) await this.stream(id, gen, res, parser);
    else await this.full(id, gen, res, parser);
  }

  private anthropicUsage(out: RequestOutput, outputTokens: number): AnthropicUsage {
    // NOTE: as Anthropic counts them, input_tokens leaves out the tokens read from the (prefix) cache.
    const cached = out.numCachedTokens;
    return { input_tokens: out.promptTokenIds.length - cached, output_tokens: outputTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: cached };
  }

  private async full(id: string, gen: AsyncGenerator<RequestOutput, void>, res: ServerResponse, parser: ChatOutputParser | null): Promise<void> {
    let text = '';
    let tokens = 0;
    let last: RequestOutput | null = null;
    for await (const out of gen) {
      last = out;
      text += out.outputs[0].text;
      tokens += out.outputs[0].tokenIds.length;
    }
    if (last === null) throw new Error(`request ${id} ended without an output`);
    const blocks = new MessageBlockBuilder(async () => {});
    if (parser) await feedWhole(blocks, parser, text);
    else await blocks.text(text);
    await blocks.close();
    const stop = stopReason(last.outputs[0], blocks.usedTools);
    const body: AnthropicMessage = {
      id,
      type: 'message',
      role: 'assistant',
      model: this.modelName,
      content: blocks.blocks,
      stop_reason: stop.reason,
      stop_sequence: stop.sequence,
      usage: this.anthropicUsage(last, tokens),
    };
    sendJson(res, 200, body);
  }

  private async stream(id: string, gen: AsyncGenerator<RequestOutput, void>, res: ServerResponse, parser: ChatOutputParser | null): Promise<void> {
    const sse = new SseWriter(res);
    const send = (type: string, fields: Record<string, unknown> = {}) => sse.sendNamed(type, { type, ...fields });
    const blocks = new MessageBlockBuilder(send);
    let tokens = 0;
    let text = '';
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
        text += o.text;
        if (!parser) await blocks.text(o.text);
        else {
          const d = parser.streamed(text, o.finishReason !== null);
          if (d) await feedDelta(blocks, d);
        }
      }
      if (last === null) throw new Error(`request ${id} ended without an output`);
      await blocks.close();
      const stop = stopReason(last.outputs[0], blocks.usedTools);
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

async function feedDelta(blocks: MessageBlockBuilder, d: ChatDelta): Promise<void> {
  await blocks.thinking(d.reasoning ?? '');
  await blocks.text(d.content ?? '');
  for (const c of d.tool_calls ?? []) await blocks.toolCall(c.index, c.function.name, c.function.arguments);
}

async function feedWhole(blocks: MessageBlockBuilder, parser: ChatOutputParser, text: string): Promise<void> {
  const parts = parser.whole(text);
  await blocks.thinking(parts.reasoning ?? '');
  await blocks.text(parts.content ?? '');
  for (const [i, t] of parts.toolCalls.entries()) await blocks.toolCall(i, t.function.name, t.function.arguments);
}

/** An error on the Anthropic routes, in Anthropic's shape ({"type":"error","error":{"type","message"}}). */
export function sendAnthropicError(res: ServerResponse, e: unknown, headers: Record<string, string>): { code: number } {
  const { status, body } = anthropicError(e);
  sendJson(res, status, body, status === 503 ? { 'retry-after': '1', ...headers } : headers);
  return { code: status };
}
