// SamplingParams: vLLM's fields, names in camelCase, vLLM's defaults.
// (Validation and generation_config defaults: see validate() and the helper module.)

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

  constructor(init: Partial<SamplingParamsInit> = {}) {
    Object.assign(this, init);
  }

  /** Re-hydrates a plain object (e.g. after postMessage) without validating again. */
  static fromPlain(obj: SamplingParamsInit): SamplingParams {
    return Object.assign(Object.create(SamplingParams.prototype) as SamplingParams, obj);
  }

  get greedy(): boolean {
    return this.temperature < 1e-5;
  }
}
