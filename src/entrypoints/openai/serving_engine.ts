// What the completion and chat handlers share (vLLM's OpenAIServing): the model
// check, request fields -> SamplingParams with the model's defaults, prompt
// tokenization, request logging, and the AsyncLLM calls tied to a client connection.
import { randomUUID } from 'node:crypto';
import type { AsyncLLM } from '../../engine/async_llm.js';
import { InvalidRequestError, NotFoundError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { RequestOutput } from '../../outputs.js';
import type { SamplingParams, SamplingParamsInput } from '../../sampling_params.js';
import { promptEndsReasoning, reasoningTokenIds } from '../../structured_output/reasoning_end.js';
import type { ReasoningContext } from './chat_tools.js';
import { structuredOutputsOfRequest } from './structured_outputs.js';
import { samplingParamsWithDefaults } from '../../sampling_params_defaults.js';
import type { PromptGuard } from './prompt_guard.js';
import type { ChatCompletionRequest, CompletionRequest, UsageInfo } from './protocol.js';
import { formatRequestLog } from './request_log.js';

export interface ServingOptions {
  /** Names the model answers to (--served-model-name); the first is reported. */
  servedModelNames: string[];
  /** Log each accepted request (prompt and parameters): --enable-log-requests. */
  logRequests: boolean;
  /** Characters / token ids of a prompt shown in request logs (--max-log-len; null: all). */
  maxLogLen: number | null;
  /** Length limits and off-loop tokenization of prompts. */
  guard: PromptGuard;
  /** Accept a chat_template in requests (--trust-request-chat-template). */
  trustRequestChatTemplate: boolean;
  logger: Logger;
  /** Logprob tokens as 'token_id:N' for every request (--return-tokens-as-token-ids). */
  returnTokensAsTokenIds?: boolean;
  /** usage.prompt_tokens_details (cached tokens) in answers (--enable-prompt-tokens-details). */
  enablePromptTokensDetails?: boolean;
  /** Usage at the end of every stream, asked for or not (--enable-force-include-usage). */
  enableForceIncludeUsage?: boolean;
  /** --enable-auto-tool-choice */
  enableAutoToolChoice?: boolean;
  /** --tool-call-parser (hermes, llama3_json, mistral) */
  toolCallParser?: string | null;
}

export function randomId(): string {
  return randomUUID().replaceAll('-', '');
}

/** truncate_prompt_tokens with truncation_side, and the output tokens it must leave room for. */
export interface Truncation {
  tokens?: number | null;
  side?: 'left' | 'right' | null;
  maxOutputTokens?: number | null;
  /** The request field the output tokens came from, for the error message. */
  maxOutputParam?: string;
}

/** A validated prompt: its token ids and, when known, its text. */
export interface TokenizedPrompt {
  promptTokenIds: number[];
  prompt: string | null;
}

export class OpenAIServing {
  constructor(
    readonly engine: AsyncLLM,
    readonly opts: ServingOptions,
  ) {}

  get modelName(): string {
    return this.opts.servedModelNames[0];
  }

  get tokenizer() {
    return this.engine.tokenizer;
  }

  get maxModelLen(): number {
    return this.engine.modelConfig.maxModelLen;
  }

  private thinkIds: { start: number[]; end: number[] } | null = null;

  /** What the reasoning parser needs of one request (under --reasoning-parser): enable_thinking, and whether the prompt closed the block. */
  reasoningContext(promptTokenIds: readonly number[], chatTemplateKwargs?: Record<string, unknown> | null): ReasoningContext {
    const parser = this.engine.args.reasoningParser;
    if (!parser) return {};
    this.thinkIds ??= reasoningTokenIds(this.engine.args.tokenizer ?? this.engine.args.model, parser);
    return { thinkingEnabled: chatTemplateKwargs?.enable_thinking !== false, promptEndsReasoning: promptEndsReasoning(promptTokenIds, this.thinkIds) };
  }

  /** 404 for a model this server does not serve (a missing model means the default one). */
  checkModel(model: string | null | undefined): void {
    if (model === null || model === undefined || this.opts.servedModelNames.includes(model)) return;
    throw new NotFoundError(`The model \`${model}\` does not exist.`);
  }

  /** vLLM's request validators shared by both APIs (those that do not need the model). */
  checkCommon(req: CompletionRequest | ChatCompletionRequest): void {
    if (req.stream_options && !req.stream) {
      throw new InvalidRequestError('Stream options can only be defined when `stream=True`.', 'stream_options');
    }
    if (req.prompt_logprobs !== null && req.prompt_logprobs !== undefined && req.stream && req.prompt_logprobs !== 0) {
      throw new InvalidRequestError('`prompt_logprobs` are not available when `stream=True`.', 'prompt_logprobs');
    }
    if (req.cache_salt !== null && req.cache_salt !== undefined && req.cache_salt === '') {
      throw new InvalidRequestError("Parameter 'cache_salt' must be a non-empty string if provided.", 'cache_salt');
    }
    // NOTE: response_format and the other fields this server does not implement are
    // refused before validation (request_fields.ts); use_beam_search's checks are in
    // serving_beam_search.ts.
    if (req.truncate_prompt_tokens !== null && req.truncate_prompt_tokens !== undefined && req.truncate_prompt_tokens < -1) {
      throw new InvalidRequestError('truncate_prompt_tokens must be -1 (the model length) or positive.', 'truncate_prompt_tokens');
    }
  }

  /** The request's sampling fields; those left out take the model's generation_config defaults. */
  baseSamplingInput(req: CompletionRequest | ChatCompletionRequest): SamplingParamsInput {
    const opt = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);
    return {
      n: opt(req.n),
      presencePenalty: opt(req.presence_penalty),
      frequencyPenalty: opt(req.frequency_penalty),
      repetitionPenalty: opt(req.repetition_penalty),
      temperature: opt(req.temperature),
      topP: opt(req.top_p),
      topK: opt(req.top_k),
      minP: opt(req.min_p),
      seed: req.seed ?? null,
      stop: req.stop ?? [],
      stopTokenIds: req.stop_token_ids ?? [],
      ignoreEos: req.ignore_eos ?? false,
      minTokens: req.min_tokens ?? 0,
      skipSpecialTokens: req.skip_special_tokens ?? true,
      spacesBetweenSpecialTokens: req.spaces_between_special_tokens ?? true,
      includeStopStrInOutput: req.include_stop_str_in_output ?? false,
      logitBias: req.logit_bias ?? null,
      allowedTokenIds: req.allowed_token_ids ?? null,
      outputKind: req.stream ? 'delta' : 'final_only',
      structuredOutputs: structuredOutputsOfRequest(req),
    };
  }

  /**
   * SamplingParams with the model's defaults. `maxTokens` null means "up to the
   * context length" (capped by generation_config's max_new_tokens, as vLLM does).
   */
  samplingParams(input: SamplingParamsInput, promptLen: number): SamplingParams {
    const defaults = this.engine.defaultSamplingOverrides;
    const user = { ...input };
    if (user.maxTokens === null || user.maxTokens === undefined) {
      const room = Math.max(1, this.maxModelLen - promptLen);
      user.maxTokens = defaults.maxTokens !== undefined && defaults.maxTokens !== null ? Math.min(defaults.maxTokens, room) : null;
    }
    return samplingParamsWithDefaults(defaults, user);
  }

  /**
   * The prompts of a completions or embeddings request: a string, strings, token ids
   * or lists of token ids, each tokenized and truncated; `empty()` is the error for
   * an empty one. Every text is length-checked before any is tokenized, and long
   * ones are tokenized off the event loop (PromptGuard).
   */
  async tokenizeInputs(p: string | string[] | number[] | number[][], addSpecialTokens: boolean, truncation: Truncation,
    empty: () => Error, param = 'prompt'): Promise<TokenizedPrompt[]> {
    const guard = this.opts.guard;
    const fromIds = (ids: number[]): TokenizedPrompt => {
      if (ids.length === 0) throw empty();
      return { promptTokenIds: this.truncate(ids, truncation), prompt: null };
    };
    if (typeof p !== 'string' && p.every((x) => typeof x === 'number')) return [fromIds(p as number[])];
    if (typeof p !== 'string' && !p.every((x) => typeof x === 'string')) return (p as number[][]).map(fromIds);
    const texts = typeof p === 'string' ? [p] : (p as string[]);
    const truncate = truncation.tokens;
    for (const text of texts) {
      if (text === '') throw empty();
      if (truncate === null || truncate === undefined) guard.checkLength(text, param);
    }
    const out: TokenizedPrompt[] = [];
    for (const text of texts) {
      const ids = await guard.encode(text, { addSpecialTokens, truncate, param });
      out.push({ promptTokenIds: this.truncate(ids, truncation), prompt: text });
    }
    return out;
  }

  /**
   * Applies truncate_prompt_tokens as vLLM's renderer does: keep k tokens, the last
   * ones (truncation_side 'left', the default) or the first ('right'); -1 means
   * max_model_len minus the requested output tokens, and a k beyond that is refused.
   */
  truncate(ids: number[], t: Truncation): number[] {
    if (t.tokens === null || t.tokens === undefined) return ids;
    const maxOutput = t.maxOutputTokens ?? 0;
    const maxInput = this.maxModelLen - maxOutput;
    if (t.tokens > maxInput) {
      throw new InvalidRequestError(
        `truncate_prompt_tokens=${t.tokens} cannot be greater than max_model_len - ${t.maxOutputParam ?? 'max_tokens'} = ${maxInput}. ` +
          'Please request a smaller truncation size.',
        'truncate_prompt_tokens',
      );
    }
    const k = t.tokens === -1 ? maxInput : t.tokens;
    if (ids.length <= k) return ids;
    return (t.side ?? 'left') === 'left' ? ids.slice(ids.length - k) : ids.slice(0, k);
  }

  /** Logs an accepted request (after validation), its prompt cut to --max-log-len. */
  logRequest(requestId: string, prompt: TokenizedPrompt, params: SamplingParams): void {
    if (!this.opts.logRequests) return;
    this.opts.logger.info(formatRequestLog(requestId, prompt.prompt, prompt.promptTokenIds, params, this.opts.maxLogLen));
  }

  /** Starts generation for one prompt; `signal` aborts it (the client went away). */
  generate(
    requestId: string,
    prompt: TokenizedPrompt,
    params: SamplingParams,
    signal: AbortSignal,
    extra: { priority?: number | null; cacheSalt?: string | null },
  ): AsyncGenerator<RequestOutput, void, undefined> {
    const stream = this.engine.generate(
      prompt.prompt === null ? { promptTokenIds: prompt.promptTokenIds } : { promptTokenIds: prompt.promptTokenIds, prompt: prompt.prompt },
      params,
      requestId,
      { signal, priority: extra.priority ?? 0, cacheSalt: extra.cacheSalt ?? undefined },
    );
    // NOTE: after engine.generate, which validates: a refused request is never logged.
    this.logRequest(requestId, prompt, params);
    return stream;
  }

  usage(promptTokens: number, completionTokens: number, cachedTokens: number | null): UsageInfo {
    const usage: UsageInfo = {
      prompt_tokens: promptTokens,
      total_tokens: promptTokens + completionTokens,
      completion_tokens: completionTokens,
    };
    // NOTE: as vLLM, only with --enable-prompt-tokens-details, and only when some prompt tokens were cached.
    if (this.opts.enablePromptTokensDetails && cachedTokens !== null && cachedTokens > 0) {
      usage.prompt_tokens_details = { cached_tokens: cachedTokens };
    }
    return usage;
  }

  /** Whether a stream ends with usage (and carries it on every chunk): vLLM's should_include_usage. */
  streamUsage(req: CompletionRequest | ChatCompletionRequest): { includeUsage: boolean; continuousUsage: boolean } {
    const force = this.opts.enableForceIncludeUsage ?? false;
    const so = req.stream_options;
    if (!so) return { includeUsage: force, continuousUsage: false };
    const includeUsage = so.include_usage === true || force;
    return { includeUsage, continuousUsage: includeUsage && so.continuous_usage_stats === true };
  }

  /** Logprob tokens as 'token_id:N': the request's choice, else the server's. */
  asTokenIds(req: CompletionRequest | ChatCompletionRequest): boolean {
    return req.return_tokens_as_token_ids ?? this.opts.returnTokensAsTokenIds ?? false;
  }
}

/** Interleaves several async iterators, tagging each value with its source index. */
export async function* mergeAsyncIterators<T>(iters: AsyncIterator<T>[]): AsyncGenerator<[number, T]> {
  type Next = { i: number; r: IteratorResult<T> };
  const pending = new Map<number, Promise<Next>>();
  const pull = (i: number) => {
    const p = iters[i].next().then((r) => ({ i, r }));
    p.catch(() => {}); // handled by the race below, or dropped once the consumer stopped
    pending.set(i, p);
  };
  iters.forEach((_, i) => pull(i));
  try {
    while (pending.size > 0) {
      const { i, r } = await Promise.race(pending.values());
      if (r.done) {
        pending.delete(i);
        continue;
      }
      pull(i);
      yield [i, r.value];
    }
  } finally {
    await Promise.all(iters.map((it) => it.return?.()));
  }
}
