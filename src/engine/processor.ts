// Processor: turns a user prompt and SamplingParams into a validated
// EngineCoreRequest (tokenize, check lengths and ids, fill defaults).
import type { EngineArgs } from '../config/engine_args.js';
import type { ModelConfig } from '../config/types.js';
import { InvalidRequestError } from '../errors.js';
import { SamplingParams, type SamplingParamsInit } from '../sampling_params.js';
import { defaultSamplingParamsFromGenerationConfig } from '../sampling_params_defaults.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { EngineCoreRequest } from '../core/types.js';
import { validateStructuredOutputs } from '../structured_output/validate.js';

export type PromptType = string | { prompt: string } | { promptTokenIds: number[]; prompt?: string };

/** vLLM's default cap on logprobs per position (--max-logprobs). */
export const MAX_LOGPROBS = 20;

export interface ProcessOptions {
  arrivalTime?: number;
  priority?: number;
  cacheSalt?: string;
}

export class Processor {
  /** Sampling defaults from generation_config.json ({} with generationConfig 'vllm'). */
  readonly defaultOverrides: Partial<SamplingParamsInit>;
  /** --max-logprobs: the cap on (prompt) logprobs per position; -1 lifts it to the vocabulary. */
  readonly maxLogprobs: number;

  constructor(
    readonly modelConfig: ModelConfig,
    readonly tokenizer: Tokenizer,
    readonly args: Pick<EngineArgs, 'generationConfig' | 'maxLogprobs' | 'structuredOutputsConfig'> = {},
    /** Refuse prompt + maxTokens beyond the context (the server's rule); offline, generation just stops at the limit. */
    readonly strictMaxTokens = true,
  ) {
    this.maxLogprobs = args.maxLogprobs ?? MAX_LOGPROBS;
    this.defaultOverrides = args.generationConfig === 'vllm' ? {} : defaultSamplingParamsFromGenerationConfig(modelConfig.generationConfig);
  }

  /** SamplingParams a request gets when it names none (vLLM's get_default_sampling_params). */
  defaultSamplingParams(): SamplingParams {
    return SamplingParams.create(this.defaultOverrides);
  }

  tokenize(prompt: PromptType): { promptTokenIds: number[]; promptText: string | null } {
    if (typeof prompt === 'string') return { promptTokenIds: this.tokenizer.encode(prompt), promptText: prompt };
    if ('promptTokenIds' in prompt) return { promptTokenIds: [...prompt.promptTokenIds], promptText: prompt.prompt ?? null };
    return { promptTokenIds: this.tokenizer.encode(prompt.prompt), promptText: prompt.prompt };
  }

  processInputs(requestId: string, prompt: PromptType, params: SamplingParams, opts: ProcessOptions = {}):
    { request: EngineCoreRequest; promptText: string | null } {
    const { promptTokenIds, promptText } = this.tokenize(prompt);
    const maxModelLen = this.modelConfig.maxModelLen;
    if (promptTokenIds.length === 0) throw new InvalidRequestError('The decoder prompt cannot be empty', 'prompt');
    const vocab = Math.max(this.modelConfig.vocabSize, this.tokenizer.vocabSize);
    let maxId = -1;
    for (const id of promptTokenIds) {
      if (!Number.isInteger(id) || id < 0) throw new InvalidRequestError(`Token id ${id} is out of vocabulary`, 'prompt');
      if (id > maxId) maxId = id;
    }
    if (maxId >= vocab) throw new InvalidRequestError(`Token id ${maxId} is out of vocabulary`, 'prompt');
    if (promptTokenIds.length > maxModelLen) {
      throw new InvalidRequestError(
        `The decoder prompt (length ${promptTokenIds.length}) is longer than the maximum model length of ${maxModelLen}. ` +
          'Make sure that `max_model_len` is no smaller than the number of text tokens.', 'prompt');
    }
    this.validateParams(params);
    const room = maxModelLen - promptTokenIds.length;
    let sp = params;
    const so = params.structuredOutputs;
    const noWs = this.args.structuredOutputsConfig?.disableAnyWhitespace;
    if (so && so.disableAnyWhitespace === undefined && noWs !== undefined) {
      sp = SamplingParams.fromPlain({ ...sp, structuredOutputs: { ...so, disableAnyWhitespace: noWs } });
    }
    if (params.maxTokens === null) {
      sp = sp.clone({ maxTokens: Math.max(1, room) });
    } else if (this.strictMaxTokens && params.maxTokens > room) {
      throw new InvalidRequestError(
        `This model's maximum context length is ${maxModelLen} tokens. However, you requested ` +
          `${params.maxTokens + promptTokenIds.length} tokens (${promptTokenIds.length} in the messages, ` +
          `${params.maxTokens} in the completion). Please reduce the length of the messages or completion.`, 'max_tokens');
    }
    const request: EngineCoreRequest = {
      requestId,
      promptTokenIds,
      samplingParams: sp,
      eosTokenIds: this.modelConfig.eosTokenIds,
      arrivalTime: opts.arrivalTime ?? Date.now() / 1000,
      priority: opts.priority ?? 0,
      cacheSalt: opts.cacheSalt,
    };
    return { request, promptText };
  }

  /** Checks that depend on the model (ranges were checked by SamplingParams.create). */
  private validateParams(p: SamplingParams): void {
    const vocab = this.modelConfig.vocabSize;
    const maxLogprobs = this.maxLogprobs === -1 ? vocab : this.maxLogprobs;
    for (const [n, field] of [[p.logprobs, 'logprobs'], [p.promptLogprobs, 'prompt_logprobs']] as const) {
      const num = n === -1 ? vocab : n;
      if (num !== null && num > maxLogprobs) {
        throw new InvalidRequestError(`Requested ${field === 'logprobs' ? 'sample' : 'prompt'} logprobs of ${num}, which is greater than max allowed: ${maxLogprobs}`, field);
      }
    }
    const outOfVocab = (ids: Iterable<number>) => [...ids].find((id) => !Number.isInteger(id) || id < 0 || id >= vocab);
    if (p.allowedTokenIds && outOfVocab(p.allowedTokenIds) !== undefined) {
      throw new InvalidRequestError('allowed_token_ids contains out-of-vocab token id!', 'allowed_token_ids');
    }
    if (p.logitBias) {
      const bad = outOfVocab(Object.keys(p.logitBias).map(Number));
      if (bad !== undefined) throw new InvalidRequestError(`token_id(s) [${bad}] in logit_bias contain out-of-vocab token ids. Vocabulary size: ${vocab}`, 'logit_bias');
    }
    const badStop = outOfVocab(p.stopTokenIds);
    if (badStop !== undefined) throw new InvalidRequestError(`stop_token_ids contains out-of-vocab token id ${badStop}`, 'stop_token_ids');
    if (p.structuredOutputs) validateStructuredOutputs(p.structuredOutputs);
  }
}
