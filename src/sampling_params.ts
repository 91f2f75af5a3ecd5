// SamplingParams: vLLM's fields, names in camelCase, vLLM's defaults.
// SamplingParams.create() normalizes and validates as vLLM's __post_init__ /
// _verify_args; verify() adds the checks that need the model (vocab size,
// max logprobs). Defaults from generation_config.json: ./sampling_params_defaults.ts.
import { VllmError } from './errors.js';
import { grammarSpecOf, type StructuredOutputsParams } from './structured_output/params.js';

export type RequestOutputKind = 'cumulative' | 'delta' | 'final_only';

export interface SamplingParamsInit {
  n: number;
  presencePenalty: number;
  frequencyPenalty: number;
  repetitionPenalty: number;
  temperature: number;
  topP: number;
  topK: number;
  minP: number;
  seed: number | null;
  stop: string[];
  stopTokenIds: number[];
  ignoreEos: boolean;
  /** null: up to the model's context length. */
  maxTokens: number | null;
  minTokens: number;
  /** Number of top logprobs per sampled token (null: none; -1: whole vocabulary). */
  logprobs: number | null;
  promptLogprobs: number | null;
  detokenize: boolean;
  skipSpecialTokens: boolean;
  spacesBetweenSpecialTokens: boolean;
  includeStopStrInOutput: boolean;
  /** token id -> bias added to its logit. */
  logitBias: Record<number, number> | null;
  allowedTokenIds: number[] | null;
  outputKind: RequestOutputKind;
  /** vLLM's structured_outputs: output constrained by a JSON schema, regex, choice or grammar. */
  structuredOutputs: StructuredOutputsParams | null;
}

/** What SamplingParams.create() accepts: the fields, plus vLLM's looser forms (stop as one string, null lists, logprobs: true, string keys in logitBias). */
export type SamplingParamsInput = Partial<
  Omit<SamplingParamsInit, 'stop' | 'stopTokenIds' | 'logprobs' | 'promptLogprobs' | 'logitBias'>
> & {
  stop?: string | string[] | null;
  stopTokenIds?: number[] | null;
  logprobs?: number | boolean | null;
  promptLogprobs?: number | boolean | null;
  logitBias?: Record<number | string, number> | null;
};

/** An out-of-range or ill-typed sampling parameter (vLLM's message). The server answers 400 with `param`. */
export class SamplingParamsError extends VllmError {
  /** The field at fault, snake_case as in the HTTP API ('top_p', 'max_tokens', ...). */
  declare readonly param: string;
  readonly value: unknown;

  constructor(message: string, param: string, value?: unknown) {
    super(message, { status: 400, type: 'BadRequestError', param });
    this.value = value;
  }
}

/** Below this temperature sampling is greedy (vLLM's _SAMPLING_EPS). */
export const SAMPLING_EPS = 1e-5;
/** A positive temperature below this is raised to it (vLLM's _MAX_TEMP): smaller ones overflow. */
const MIN_POSITIVE_TEMPERATURE = 1e-2;
/** vLLM's max_logprobs default (ModelConfig). */
export const DEFAULT_MAX_LOGPROBS = 20;
const OUTPUT_KINDS: readonly RequestOutputKind[] = ['cumulative', 'delta', 'final_only'];

function maxNSequences(): number {
  const env = Number(process.env.VLLM_MAX_N_SEQUENCES);
  return Number.isInteger(env) && env > 0 ? env : 16384;
}

/** Python-like rendering of a value inside a message. */
function show(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(show).join(', ')}]`;
  if (typeof v === 'string') return `'${v}'`;
  return String(v);
}

function fail(message: string, param: string, value?: unknown): never {
  throw new SamplingParamsError(message, param, value);
}

function requireNumber(v: unknown, param: string): asserts v is number {
  if (typeof v !== 'number') fail(`${param} must be a number, got ${typeof v}.`, param, v);
}

function requireInt(v: unknown, param: string): asserts v is number {
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    fail(`${param} must be an integer, got ${typeof v === 'number' ? v : typeof v}.`, param, v);
  }
}

function requireBool(v: unknown, param: string): void {
  if (typeof v !== 'boolean') fail(`${param} must be a boolean, got ${typeof v}.`, param, v);
}

function requireIntList(v: unknown, param: string): asserts v is number[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isInteger(x))) {
    fail(`${param} must contain only integers, got ${show(v)}.`, param, v);
  }
}

export class SamplingParams implements SamplingParamsInit {
  n = 1;
  presencePenalty = 0;
  frequencyPenalty = 0;
  repetitionPenalty = 1;
  temperature = 1;
  topP = 1;
  topK = 0;
  minP = 0;
  seed: number | null = null;
  stop: string[] = [];
  stopTokenIds: number[] = [];
  ignoreEos = false;
  maxTokens: number | null = 16;
  minTokens = 0;
  logprobs: number | null = null;
  promptLogprobs: number | null = null;
  detokenize = true;
  skipSpecialTokens = true;
  spacesBetweenSpecialTokens = true;
  includeStopStrInOutput = false;
  logitBias: Record<number, number> | null = null;
  allowedTokenIds: number[] | null = null;
  outputKind: RequestOutputKind = 'cumulative';
  structuredOutputs: StructuredOutputsParams | null = null;

  /** Takes the fields as given, without checks (see create()). */
  constructor(init: Partial<SamplingParamsInit> = {}) {
    Object.assign(this, init);
  }

  /**
   * Normalizes and validates as vLLM does; throws SamplingParamsError.
   * Normalizes: stop 'x' -> ['x'], null lists -> [], duplicate stop ids dropped,
   * seed -1 -> null, logprobs true -> 1, topK -1 -> 0, logitBias keys -> numbers and
   * values clamped to [-100, 100], 0 < temperature < 0.01 -> 0.01; a greedy
   * temperature (< 1e-5) sets topP 1, topK 0, minP 0.
   */
  static create(init: SamplingParamsInput = {}): SamplingParams {
    const p = new SamplingParams();
    for (const [key, value] of Object.entries(init)) {
      if (value !== undefined) (p as unknown as Record<string, unknown>)[key] = value;
    }
    const raw = p as unknown as Record<string, unknown>;
    if (typeof raw.stop === 'string') p.stop = [raw.stop];
    else if (raw.stop === null) p.stop = [];
    if (raw.stopTokenIds === null) p.stopTokenIds = [];
    if (raw.logprobs === true) p.logprobs = 1;
    else if (raw.logprobs === false) p.logprobs = null;
    if (raw.promptLogprobs === true) p.promptLogprobs = 1;
    else if (raw.promptLogprobs === false) p.promptLogprobs = null;
    if (p.seed === -1) p.seed = null;
    if (p.logitBias !== null) p.logitBias = normalizeLogitBias(p.logitBias);
    if (typeof p.temperature === 'number' && p.temperature > 0 && p.temperature < MIN_POSITIVE_TEMPERATURE) {
      p.temperature = MIN_POSITIVE_TEMPERATURE;
    }
    p.validate();
    if (Array.isArray(p.stopTokenIds)) p.stopTokenIds = [...new Set(p.stopTokenIds)];
    if (p.topK === -1) p.topK = 0;
    if (p.temperature < SAMPLING_EPS) {
      p.topP = 1;
      p.topK = 0;
      p.minP = 0;
      if (p.n > 1) fail(`n must be 1 when using greedy sampling, got ${p.n}.`, 'n', p.n);
    }
    return p;
  }

  /** Re-hydrates a plain object (e.g. after postMessage) without validating again. */
  static fromPlain(obj: SamplingParamsInit): SamplingParams {
    return Object.assign(Object.create(SamplingParams.prototype) as SamplingParams, obj);
  }

  /** A deep copy (lists and logitBias are not shared), e.g. for the children of an n > 1 request. */
  clone(overrides: Partial<SamplingParamsInit> = {}): SamplingParams {
    const copy = SamplingParams.fromPlain({
      ...this,
      stop: [...this.stop],
      stopTokenIds: [...this.stopTokenIds],
      logitBias: this.logitBias && { ...this.logitBias },
      allowedTokenIds: this.allowedTokenIds && [...this.allowedTokenIds],
      structuredOutputs: this.structuredOutputs && { ...this.structuredOutputs },
    });
    return Object.assign(copy, overrides);
  }

  get greedy(): boolean {
    return this.temperature < SAMPLING_EPS;
  }

  /** vLLM's _verify_args: the checks that need no model. Throws SamplingParamsError. */
  validate(): void {
    if (this.structuredOutputs !== null) grammarSpecOf(this.structuredOutputs);
    requireInt(this.n, 'n');
    if (this.n < 1) fail(`n must be at least 1, got ${this.n}.`, 'n', this.n);
    const maxN = maxNSequences();
    if (this.n > maxN) {
      fail(`n must be at most ${maxN}, got ${this.n}. To increase this limit, set the VLLM_MAX_N_SEQUENCES environment variable.`, 'n', this.n);
    }
    requireNumber(this.presencePenalty, 'presence_penalty');
    if (!(this.presencePenalty >= -2 && this.presencePenalty <= 2)) {
      fail(`presence_penalty must be in [-2, 2], got ${this.presencePenalty}.`, 'presence_penalty', this.presencePenalty);
    }
    requireNumber(this.frequencyPenalty, 'frequency_penalty');
    if (!(this.frequencyPenalty >= -2 && this.frequencyPenalty <= 2)) {
      fail(`frequency_penalty must be in [-2, 2], got ${this.frequencyPenalty}.`, 'frequency_penalty', this.frequencyPenalty);
    }
    requireNumber(this.repetitionPenalty, 'repetition_penalty');
    if (!Number.isFinite(this.repetitionPenalty)) {
      fail(`repetition_penalty must be a finite number, got ${this.repetitionPenalty}.`, 'repetition_penalty', this.repetitionPenalty);
    }
    if (this.repetitionPenalty <= 0) {
      fail(`repetition_penalty must be greater than zero, got ${this.repetitionPenalty}.`, 'repetition_penalty', this.repetitionPenalty);
    }
    requireNumber(this.temperature, 'temperature');
    if (!Number.isFinite(this.temperature)) {
      fail(`temperature must be a finite number, got ${this.temperature}.`, 'temperature', this.temperature);
    }
    if (this.temperature < 0) fail(`temperature must be non-negative, got ${this.temperature}.`, 'temperature', this.temperature);
    if (this.temperature > 2) fail(`temperature must be in [0, 2], got ${this.temperature}.`, 'temperature', this.temperature);
    requireNumber(this.topP, 'top_p');
    if (!(this.topP > 0 && this.topP <= 1)) fail(`top_p must be in (0, 1], got ${this.topP}.`, 'top_p', this.topP);
    requireNumber(this.topK, 'top_k');
    if (this.topK < -1) fail(`top_k must be 0 (disable), or at least 1, got ${this.topK}.`, 'top_k', this.topK);
    if (!Number.isInteger(this.topK)) fail(`top_k must be an integer, got ${this.topK}.`, 'top_k', this.topK);
    requireNumber(this.minP, 'min_p');
    if (!(this.minP >= 0 && this.minP <= 1)) fail(`min_p must be in [0, 1], got ${this.minP}.`, 'min_p', this.minP);
    if (this.seed !== null) requireInt(this.seed, 'seed');
    if (this.maxTokens !== null) {
      requireInt(this.maxTokens, 'max_tokens');
      if (this.maxTokens < 1) fail(`max_tokens must be at least 1, got ${this.maxTokens}.`, 'max_tokens', this.maxTokens);
    }
    requireInt(this.minTokens, 'min_tokens');
    if (this.minTokens < 0) {
      fail(`min_tokens must be greater than or equal to 0, got ${this.minTokens}.`, 'min_tokens', this.minTokens);
    }
    if (this.maxTokens !== null && this.minTokens > this.maxTokens) {
      fail(`min_tokens must be less than or equal to max_tokens=${this.maxTokens}, got ${this.minTokens}.`, 'min_tokens', this.minTokens);
    }
    for (const [value, param] of [[this.logprobs, 'logprobs'], [this.promptLogprobs, 'prompt_logprobs']] as const) {
      if (value === null) continue;
      requireInt(value, param);
      if (value !== -1 && value < 0) fail(`${param} must be non-negative or -1, got ${value}.`, param, value);
    }
    requireIntList(this.stopTokenIds, 'stop_token_ids');
    if (!Array.isArray(this.stop) || !this.stop.every((s) => typeof s === 'string')) {
      fail(`stop must be a string or a list of strings, got ${show(this.stop)}.`, 'stop', this.stop);
    }
    if (this.stop.some((s) => s.length === 0)) fail('stop cannot contain an empty string.', 'stop', this.stop);
    for (const [value, param] of [
      [this.ignoreEos, 'ignore_eos'],
      [this.detokenize, 'detokenize'],
      [this.skipSpecialTokens, 'skip_special_tokens'],
      [this.spacesBetweenSpecialTokens, 'spaces_between_special_tokens'],
      [this.includeStopStrInOutput, 'include_stop_str_in_output'],
    ] as const) {
      requireBool(value, param);
    }
    if (this.stop.length > 0 && !this.detokenize) {
      fail('stop strings are only supported when detokenize is True. Set detokenize=True to use stop.', 'stop', this.stop);
    }
    if (this.logitBias !== null) {
      if (typeof this.logitBias !== 'object' || Array.isArray(this.logitBias)) {
        fail(`logit_bias must be a map of token id to bias, got ${show(this.logitBias)}.`, 'logit_bias', this.logitBias);
      }
      for (const [key, bias] of Object.entries(this.logitBias)) {
        if (!/^-?\d+$/.test(key)) {
          fail(`logit_bias contains key(s) that cannot be converted to integer token IDs: ['${key}']`, 'logit_bias', key);
        }
        if (typeof bias !== 'number' || !Number.isFinite(bias)) {
          fail(`logit_bias values must be finite numbers, got ${show(bias)} for token ${key}.`, 'logit_bias', bias);
        }
      }
    }
    if (this.allowedTokenIds !== null) {
      requireIntList(this.allowedTokenIds, 'allowed_token_ids');
      if (this.allowedTokenIds.length === 0) {
        fail('allowed_token_ids is not None and empty!', 'allowed_token_ids', this.allowedTokenIds);
      }
    }
    if (!OUTPUT_KINDS.includes(this.outputKind)) {
      fail(`output_kind must be one of ${OUTPUT_KINDS.join(', ')}, got ${show(this.outputKind)}.`, 'output_kind', this.outputKind);
    }
  }

  /**
   * vLLM's SamplingParams.verify: the checks that need the model. maxLogprobs is
   * the engine's --max-logprobs (default 20; -1: the whole vocabulary).
   */
  verify(model: { vocabSize: number; maxLogprobs?: number }): void {
    const vocab = model.vocabSize;
    let maxLogprobs = model.maxLogprobs ?? DEFAULT_MAX_LOGPROBS;
    if (maxLogprobs === -1) maxLogprobs = vocab;
    for (const [value, what, param] of [
      [this.logprobs, 'sample', 'logprobs'],
      [this.promptLogprobs, 'prompt', 'prompt_logprobs'],
    ] as const) {
      if (!value) continue;
      const num = value === -1 ? vocab : value;
      if (num > maxLogprobs) {
        fail(`Requested ${what} logprobs of ${num}, which is greater than max allowed: ${maxLogprobs}`, param, num);
      }
    }
    const outOfVocab = (ids: Iterable<number>) => [...ids].filter((id) => id < 0 || id >= vocab);
    const badStop = outOfVocab(this.stopTokenIds);
    if (badStop.length > 0) {
      fail(`token_id(s) ${show(badStop)} in stop_token_ids contain out-of-vocab token ids. Vocabulary size: ${vocab}`, 'stop_token_ids', badStop);
    }
    if (this.logitBias) {
      const badBias = outOfVocab(Object.keys(this.logitBias).map(Number));
      if (badBias.length > 0) {
        fail(`token_id(s) ${show(badBias)} in logit_bias contain out-of-vocab token ids. Vocabulary size: ${vocab}`, 'logit_bias', badBias);
      }
    }
    if (this.allowedTokenIds && outOfVocab(this.allowedTokenIds).length > 0) {
      fail('allowed_token_ids contains out-of-vocab token id!', 'allowed_token_ids', outOfVocab(this.allowedTokenIds));
    }
  }
}

/** vLLM's from_optional: integer keys, biases clamped to [-100, 100]. */
function normalizeLogitBias(bias: unknown): Record<number, number> {
  if (bias === null || typeof bias !== 'object' || Array.isArray(bias)) {
    fail(`logit_bias must be a map of token id to bias, got ${show(bias)}.`, 'logit_bias', bias);
  }
  const entries = Object.entries(bias as Record<string, unknown>);
  const badKeys = entries.map(([k]) => k).filter((k) => !/^\s*[-+]?\d+\s*$/.test(k));
  if (badKeys.length > 0) {
    fail(`logit_bias contains key(s) that cannot be converted to integer token IDs: ${show(badKeys)}`, 'logit_bias', badKeys);
  }
  const out: Record<number, number> = {};
  for (const [k, v] of entries) {
    if (typeof v !== 'number' || Number.isNaN(v)) {
      fail(`logit_bias values must be finite numbers, got ${show(v)} for token ${k.trim()}.`, 'logit_bias', v);
    }
    out[parseInt(k, 10)] = Math.min(100, Math.max(-100, v));
  }
  return out;
}
