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
import { sendJson, toErrorInfo } from './http.js';
import { NamedSseWriter } from './named_sse.js';
import type { ChatCompletionRequest, ChatMessageParam } from './protocol.js';
import type { OutputMessage, ResponseObject, ResponsesRequest } from './protocol_responses.js';
import { appendInputItems, appendOutputItems } from './responses_input.js';
import { ResponsesStore, type StoredResponse } from './responses_store.js';
import type { OpenAIServingChat } from './serving_chat.js';
import { OpenAIServing, randomId, type ServingOptions } from './serving_engine.js';

/** Where a run's events go: a stream's writer, or nowhere (a plain or background answer). */
type Emit = (type: string, fields: Record<string, unknown>) => Promise<void>;

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
    const useTools = (req.tools?.length ?? 0) > 0 && req.tool_choice !== 'none';
    if (useTools) {
      throw new InvalidRequestError(
        'Tool calling is not supported by this server yet (no tool-call parser); leave tools unset or set tool_choice to "none".',
        'tools',
      );
    }
    const format = req.text?.format?.type;
    if (format !== undefined && format !== 'text') {
      throw new InvalidRequestError(`text.format of type '${format}' (structured outputs) is not supported by this server; use 'text'.`, 'text.format');
    }
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
    const chatReq = { messages } as ChatCompletionRequest;
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

    const sse = req.stream ? new NamedSseWriter(res) : null;
    let seq = 0;
    const emit: Emit = sse
      ? (type, fields) => sse.send(type, { type, sequence_number: seq++, ...fields })
      : async () => {};
    const run = this.run(response, gen, emit, ac).catch(async (e: unknown) => {
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

  /**
   * Consumes the generation into `response` (filled in place), emitting the stream's
   * events as it goes; ends with response.completed, response.incomplete (output
   * cut by max_output_tokens) or, when cancelled, the response with status 'cancelled'.
   */
  private async run(response: ResponseObject, gen: AsyncGenerator<RequestOutput, void>, emit: Emit, ac: AbortController | null): Promise<void> {
    await emit('response.created', { response: snapshot(response) });
    await emit('response.in_progress', { response: snapshot(response) });
    const message: OutputMessage = { type: 'message', id: `msg_${randomId()}`, role: 'assistant', status: 'in_progress', content: [] };
    const part = { type: 'output_text' as const, text: '', annotations: [], logprobs: [] };
    const at = { item_id: message.id, output_index: 0, content_index: 0 };
    let promptTokens = 0;
    let outputTokens = 0;
    let cached = 0;
    let finish: string | null = null;
    try {
      let first = true;
      for await (const out of gen) {
        if (first) {
          first = false;
          promptTokens = out.promptTokenIds.length;
          cached = out.numCachedTokens;
          response.output.push(message);
          await emit('response.output_item.added', { output_index: 0, item: structuredClone(message) });
          message.content.push(part);
          await emit('response.content_part.added', { ...at, part: structuredClone(part) });
        }
        const o = out.outputs[0];
        outputTokens += o.tokenIds.length;
        if (o.text !== '') {
          part.text += o.text;
          await emit('response.output_text.delta', { ...at, delta: o.text, logprobs: [] });
        }
        if (o.finishReason !== null) finish = o.finishReason;
      }
    } catch (e) {
      if (!ac?.signal.aborted) throw e;
      response.status = 'cancelled';
    }
    const usage = { input_tokens: promptTokens, input_tokens_details: { cached_tokens: cached }, output_tokens: outputTokens,
      output_tokens_details: { reasoning_tokens: 0 }, total_tokens: promptTokens + outputTokens };
    response.usage = usage;
    const cut = finish === 'length';
    if (message.content.length > 0) {
      message.status = response.status === 'cancelled' || cut ? 'incomplete' : 'completed';
      await emit('response.output_text.done', { ...at, text: part.text, logprobs: [] });
      await emit('response.content_part.done', { ...at, part: structuredClone(part) });
      await emit('response.output_item.done', { output_index: 0, item: structuredClone(message) });
    }
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
