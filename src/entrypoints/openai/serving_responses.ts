// POST /v1/responses, GET /v1/responses/{id}, POST /v1/responses/{id}/cancel
// (vLLM's OpenAIServingResponses): the input items become chat messages rendered
// by the same chat template as /v1/chat/completions, one generation on AsyncLLM,
// answered as a `response` object or as the Responses event stream; `store`
// keeps responses for `previous_response_id` and retrieval (responses_store.ts),
// `background` generates detached from the connection and can be cancelled.
import type { ServerResponse } from 'node:http';
import type { AsyncLLM } from '../../engine/async_llm.js';
import { InvalidRequestError, NotFoundError } from '../../errors.js';
import type { RequestOutput } from '../../outputs.js';
import { sendJson, SseWriter, toErrorInfo } from './http.js';
import type { ChatCompletionRequest, ChatMessageParam } from './protocol.js';
import type { ResponseObject, ResponsesRequest } from './protocol_responses.js';
import { ResponseOutputBuilder, type Emit } from './responses_output.js';
import { responsesChatTools, textFormatConstraint } from './responses_tools.js';
import { ChatOutputParser, type ChatDelta, toolGrammar, toolMode, type ToolOptions } from './chat_tools.js';
import { appendInputItems, appendOutputItems } from './responses_input.js';
import { ResponsesStore, type StoredResponse } from './responses_store.js';
import type { OpenAIServingChat } from './serving_chat.js';
import { OpenAIServing, randomId, type ServingOptions } from './serving_engine.js';


export class OpenAIServingResponses extends OpenAIServing {
  constructor(
    engine: AsyncLLM,
    opts: ServingOptions,
    private readonly chat: OpenAIServingChat,
    readonly store: ResponsesStore,
  ) {
    super(engine, opts);
  }

  private validate(req: ResponsesRequest): void {
    if (req.background && req.store === false) {
      throw new InvalidRequestError('background can only be used when `store` is true', 'background');
    }
    if (req.max_output_tokens !== null && req.max_output_tokens !== undefined && req.max_output_tokens < 1) {
      throw new InvalidRequestError(`max_output_tokens must be at least 1, got ${req.max_output_tokens}.`, 'max_output_tokens');
    }
    if (req.top_logprobs) throw new InvalidRequestError('top_logprobs is not supported on /v1/responses by this server.', 'top_logprobs');
    if (typeof req.input !== 'string' && req.input.length === 0) throw new InvalidRequestError('input must not be empty', 'input');
    if (req.cache_salt === '') throw new InvalidRequestError("Parameter 'cache_salt' must be a non-empty string if provided.", 'cache_salt');
  }

  /** The conversation so far: the previous response's (when given) and this request's input, without instructions. */
  private history(req: ResponsesRequest): ChatMessageParam[] {
    let messages: ChatMessageParam[] = [];
    if (req.previous_response_id) {
      const prev = this.store.get(req.previous_response_id);
      if (prev === undefined) {
        throw new NotFoundError(`Response with id '${req.previous_response_id}' not found.`, 'previous_response_id');
      }
      if (prev.abort !== null) throw new InvalidRequestError(`Response '${req.previous_response_id}' is still in progress.`, 'previous_response_id');
      messages = structuredClone(prev.history);
      appendOutputItems(messages, prev.response.output);
    }
    appendInputItems(messages, req.input);
    return messages;
  }

  async create(req: ResponsesRequest, res: ServerResponse, signal: AbortSignal, headerRequestId?: string): Promise<void> {
    this.checkModel(req.model);
    this.validate(req);
    const history = this.history(req);
    const messages = req.instructions ? [{ role: 'system', content: req.instructions }, ...history] : history;
    const chatReq = { messages, ...responsesChatTools(req) } as ChatCompletionRequest;
    const toolOpts = this.toolOptions;
    const mode = toolMode(chatReq, toolOpts);
    const constraint = toolGrammar(chatReq, mode) ?? textFormatConstraint(req);
    const rendered = await this.chat.renderChat(chatReq);
    const opt = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);
    const params = this.samplingParams(
      {
        temperature: opt(req.temperature),
        topP: opt(req.top_p),
        topK: opt(req.top_k),
        minP: opt(req.min_p),
        repetitionPenalty: opt(req.repetition_penalty),
        ignoreEos: req.ignore_eos ?? false,
        seed: req.seed ?? null,
        maxTokens: req.max_output_tokens ?? null,
        outputKind: 'delta',
        structuredOutputs: constraint,
      },
      rendered.promptTokenIds.length,
    );

    const id = `resp_${headerRequestId ?? req.request_id ?? randomId()}`;
    const response = this.initialResponse(req, id);
    const store = req.store ?? true;
    const background = req.background ?? false;
    const ac = background ? new AbortController() : null;
    const gen = this.generate(id, rendered, params, ac?.signal ?? signal, { priority: req.priority, cacheSalt: req.cache_salt });
    const entry: StoredResponse = { response, history, abort: ac, done: Promise.resolve() };

    const sse = req.stream ? new SseWriter(res) : null;
    let seq = 0;
    const emit: Emit = sse
      ? (type, fields) => sse.sendNamed(type, { type, sequence_number: seq++, ...fields })
      : async () => {};
    const parser = mode.kind === 'none' && !toolOpts.reasoningParser ? null
      : new ChatOutputParser(mode, toolOpts, this.reasoningContext(rendered.promptTokenIds));
    const run = this.run(response, gen, emit, ac, parser, !!sse).catch(async (e: unknown) => {
      if (!background && (!sse || signal.aborted)) throw e; // a plain answer's error is the HTTP error; a gone client needs none
      const info = toErrorInfo(e);
      response.status = 'failed';
      response.error = { code: info.code >= 500 ? 'server_error' : 'invalid_request', message: info.message };
      await emit('error', { code: response.error.code, message: info.message, param: info.param });
      await emit('response.failed', { response: snapshot(response) });
    }).finally(() => {
      entry.abort = null;
      if (store) this.store.put(id, entry);
    });
    entry.done = run.then(() => {}, () => {});
    if (store && background) this.store.put(id, entry);
    if (background && !sse) {
      response.status = 'queued';
      sendJson(res, 200, response);
      response.status = 'in_progress';
      return;
    }
    try {
      await run;
    } finally {
      sse?.end();
    }
    if (!sse) sendJson(res, 200, response);
  }

  private initialResponse(req: ResponsesRequest, id: string): ResponseObject {
    return {
      id,
      object: 'response',
      created_at: Math.floor(Date.now() / 1000),
      status: 'in_progress',
      background: req.background ?? false,
      error: null,
      incomplete_details: null,
      instructions: req.instructions ?? null,
      max_output_tokens: req.max_output_tokens ?? null,
      metadata: req.metadata ?? null,
      model: this.modelName,
      output: [],
      parallel_tool_calls: req.parallel_tool_calls ?? true,
      previous_response_id: req.previous_response_id ?? null,
      reasoning: req.reasoning ? { effort: req.reasoning.effort ?? null, summary: req.reasoning.summary ?? null } : null,
      store: req.store ?? true,
      temperature: req.temperature ?? null,
      text: { format: req.text?.format ?? { type: 'text' } },
      tool_choice: req.tool_choice ?? 'auto',
      tools: req.tools ?? [],
      top_p: req.top_p ?? null,
      truncation: req.truncation ?? 'disabled',
      usage: null,
      user: req.user ?? null,
    };
  }

  private get toolOptions(): ToolOptions {
    return {
      enableAutoToolChoice: this.opts.enableAutoToolChoice ?? false,
      toolCallParser: this.opts.toolCallParser ?? null,
      reasoningParser: this.engine.args.reasoningParser ?? null,
    };
  }

  /**
   * Consumes the generation into `response` (filled in place), emitting the stream's
   * events as it goes; ends with response.completed, response.incomplete (output
   * cut by max_output_tokens) or, when cancelled, the response with status 'cancelled'.
   * With a parser (tools, reasoning) the text is split into reasoning, message and
   * function_call items: as it streams, or once at the end for a plain answer.
   */
  private async run(response: ResponseObject, gen: AsyncGenerator<RequestOutput, void>, emit: Emit, ac: AbortController | null,
    parser: ChatOutputParser | null, streaming: boolean): Promise<void> {
    await emit('response.created', { response: snapshot(response) });
    await emit('response.in_progress', { response: snapshot(response) });
    const out = new ResponseOutputBuilder(response.output, emit);
    const feed = async (d: ChatDelta) => {
      await out.reasoning(d.reasoning ?? '');
      await out.text(d.content ?? '');
      for (const c of d.tool_calls ?? []) await out.call({ index: c.index, id: c.id, name: c.function.name, arguments: c.function.arguments });
    };
    let promptTokens = 0;
    let outputTokens = 0;
    let cached = 0;
    let finish: string | null = null;
    let text = '';
    try {
      let first = true;
      for await (const o of gen) {
        if (first) {
          first = false;
          promptTokens = o.promptTokenIds.length;
          cached = o.numCachedTokens;
        }
        const c = o.outputs[0];
        outputTokens += c.tokenIds.length;
        text += c.text;
        if (c.finishReason !== null) finish = c.finishReason;
        if (!parser) await out.text(c.text);
        else if (streaming) {
          const d = parser.streamed(text, c.finishReason !== null);
          if (d) await feed(d);
        }
      }
    } catch (e) {
      if (!ac?.signal.aborted) throw e;
      response.status = 'cancelled';
    }
    if (parser && !streaming) {
      const parts = parser.whole(text);
      await feed({ reasoning: parts.reasoning ?? undefined, content: parts.content ?? undefined,
        tool_calls: parts.toolCalls.map((t, index) => ({ index, id: t.id, function: { name: t.function.name, arguments: t.function.arguments } })) });
    }
    response.usage = { input_tokens: promptTokens, input_tokens_details: { cached_tokens: cached }, output_tokens: outputTokens,
      output_tokens_details: { reasoning_tokens: 0 }, total_tokens: promptTokens + outputTokens };
    const cut = finish === 'length';
    await out.close(response.status === 'cancelled' || cut ? 'incomplete' : 'completed');
    if (response.status === 'cancelled') {
      await emit('response.incomplete', { response: snapshot(response) });
      return;
    }
    response.status = cut ? 'incomplete' : 'completed';
    if (cut) response.incomplete_details = { reason: 'max_output_tokens' };
    await emit(cut ? 'response.incomplete' : 'response.completed', { response: snapshot(response) });
  }

  /** GET /v1/responses/{id}. */
  retrieve(id: string, res: ServerResponse): void {
    sendJson(res, 200, this.stored(id).response);
  }

  /** POST /v1/responses/{id}/cancel: stops a background response; a synchronous one cannot be cancelled. */
  async cancel(id: string, res: ServerResponse): Promise<void> {
    const entry = this.stored(id);
    if (!entry.response.background) throw new InvalidRequestError('Cannot cancel a synchronous response.', 'response_id');
    if (entry.abort !== null) {
      entry.abort.abort(new DOMException('The response was cancelled', 'AbortError'));
      await entry.done;
    }
    sendJson(res, 200, entry.response);
  }

  private stored(id: string): StoredResponse {
    const entry = this.store.get(id);
    if (entry === undefined) throw new NotFoundError(`Response with id '${id}' not found.`, 'response_id');
    return entry;
  }
}

function snapshot(r: ResponseObject): ResponseObject {
  return structuredClone(r);
}
