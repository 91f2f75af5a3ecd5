// The sampler (vLLM V1's v1/sample/sampler.py) over host f32 logits, one row per
// request: logits processors, raw logprobs, then greedy or random sampling.
import type { PositionLogprobs } from '../../core/types.js';
import { SAMPLING_EPS, type SamplingParams } from '../../sampling_params.js';
import { SamplingGenerator } from './sampling/generator.js';
import {
  applyAllowedTokenIds,
  applyLogitBias,
  applyMinTokens,
  applyPenalties,
  hasPenalties,
} from './sampling/logits_processors.js';
import { computePromptLogprobs, gatherLogprobs } from './sampling/logprobs.js';
import { sampleRandom, SamplingScratch } from './sampling/top_k_top_p.js';

export { computePromptLogprobs, SamplingGenerator };

/** What the sampler needs to know about one request this step. */
export interface SamplingState {
  params: SamplingParams;
  /** Counted by the repetition penalty, as vLLM does. */
  promptTokenIds: readonly number[];
  /** Tokens generated so far: penalties and minTokens. */
  outputTokenIds: readonly number[];
  /** Masked while outputTokenIds.length < params.minTokens (with the stop token ids). */
  eosTokenIds: readonly number[];
  /** Default: params.stopTokenIds. */
  stopTokenIds?: readonly number[];
  /**
   * The request's own generator when params.seed is set (required then), else
   * null: the sampler's engine-wide one. One draw per randomly sampled token, so
   * after a preemption `generatorFor(params, outputTokenIds.length)` continues it.
   */
  generator: SamplingGenerator | null;
}

export interface SamplerOutput {
  /** One sampled token per request. */
  tokenIds: number[];
  /** Per request: logprobs of the sampled token (params.logprobs set), else null. */
  logprobs: (PositionLogprobs | null)[];
}

/** The generator a seeded request draws from after `numDraws` draws; null when unseeded. */
export function generatorFor(params: SamplingParams, numDraws = 0): SamplingGenerator | null {
  return params.seed === null ? null : new SamplingGenerator(params.seed, numDraws);
}

/** Index of the largest logit (the first one on ties). */
export function argmax(row: Float32Array): number {
  let best = 0;
  let bestValue = row[0]!;
  for (let i = 1; i < row.length; i++) {
    if (row[i]! > bestValue) {
      bestValue = row[i]!;
      best = i;
    }
  }
  return best;
}

export class Sampler {
  /** Draws of requests without a seed, in batch order (seeded from EngineArgs.seed). */
  readonly generator: SamplingGenerator;
  private readonly scratch = new SamplingScratch();
  private raw = new Float32Array(0);
  private allowed = new Float32Array(0);

  constructor(opts: { seed?: number } = {}) {
    this.generator = new SamplingGenerator(opts.seed ?? 0);
  }

  /**
   * Samples one token per request. `logits` ([numReqs, vocab]) is overwritten
   * (processors work in place); read nothing from it afterwards.
   */
  sample(logits: Float32Array, vocab: number, reqs: readonly SamplingState[]): SamplerOutput {
    if (logits.length < reqs.length * vocab) {
      throw new RangeError(`sampler: ${reqs.length} requests of vocab ${vocab} need ${reqs.length * vocab} logits, got ${logits.length}`);
    }
    const tokenIds = new Array<number>(reqs.length);
    const logprobs = new Array<PositionLogprobs | null>(reqs.length);
    for (let r = 0; r < reqs.length; r++) {
      const row = logits.subarray(r * vocab, (r + 1) * vocab); // [vocab]
      const [token, lp] = this.sampleRow(row, reqs[r]!);
      tokenIds[r] = token;
      logprobs[r] = lp;
    }
    return { tokenIds, logprobs };
  }

  private sampleRow(row: Float32Array, st: SamplingState): [number, PositionLogprobs | null] {
    const p = st.params;
    const numOutput = st.outputTokenIds.length;
    const minTokensActive = p.minTokens > 0 && numOutput < p.minTokens;
    const processed = p.allowedTokenIds !== null || p.logitBias !== null || minTokensActive || hasPenalties(p);
    let raw = row; // [vocab] the model's logits
    if (processed) {
      if (this.raw.length < row.length) this.raw = new Float32Array(row.length);
      raw = this.raw.subarray(0, row.length);
      raw.set(row);
      if (p.allowedTokenIds !== null) {
        if (this.allowed.length < p.allowedTokenIds.length) this.allowed = new Float32Array(p.allowedTokenIds.length);
        applyAllowedTokenIds(row, p.allowedTokenIds, this.allowed);
      }
      if (p.logitBias !== null) applyLogitBias(row, p.logitBias);
      if (minTokensActive) {
        applyMinTokens(row, numOutput, p.minTokens, st.eosTokenIds);
        applyMinTokens(row, numOutput, p.minTokens, st.stopTokenIds ?? p.stopTokenIds);
      }
      applyPenalties(row, p, st.promptTokenIds, st.outputTokenIds);
    }

    let token: number;
    if (p.temperature < SAMPLING_EPS) {
      token = argmax(row);
    } else {
      if (p.seed !== null && st.generator === null) {
        throw new Error(`a request with seed ${p.seed} came to the sampler without its generator: keep generatorFor(params) per seeded request`);
      }
      const u = (st.generator ?? this.generator).random();
      token = sampleRandom(row, p, u, this.scratch);
    }
    // NOTE: every logit masked (e.g. allowedTokenIds all stop tokens under minTokens):
    // fall back to the model's own choice rather than fail the whole batch.
    if (token < 0 || row[token] === -Infinity) token = argmax(raw);
    const lp = p.logprobs !== null ? gatherLogprobs(raw, token, p.logprobs) : null;
    return [token, lp];
  }
}
