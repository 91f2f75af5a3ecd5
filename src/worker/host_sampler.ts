// The host sampler behind the sampling seam (./sampler.ts): adapts the runner's
// request states to the TypeScript Sampler over host f32 rows (one generator per
// seeded request, rebuilt from its draw count).
import type { PositionLogprobs } from '../core/types.js';
import { computePromptLogprobs, generatorFor, Sampler, type SamplingState } from '../model_executor/layers/sampler.js';
import type { CachedRequestState } from './input_batch.js';

export class HostSampler {
  private readonly sampler: Sampler;

  constructor(seed: number) {
    this.sampler = new Sampler({ seed });
  }

  sample(logits: Float32Array, vocab: number, reqs: CachedRequestState[]): { tokenIds: number[]; logprobs: (PositionLogprobs | null)[] } {
    const states: SamplingState[] = reqs.map((r) => ({
      params: r.samplingParams,
      promptTokenIds: r.promptTokenIds,
      outputTokenIds: r.outputTokenIds,
      eosTokenIds: r.eosTokenIds,
      // NOTE: one draw per sampled token, so the generator is a function of
      // (seed, tokens so far) and survives preemption without being stored.
      generator: generatorFor(r.samplingParams, r.outputTokenIds.length),
    }));
    return this.sampler.sample(logits, vocab, states);
  }

  promptLogprobs(rows: Float32Array, vocab: number, nextTokens: number[], num: number): PositionLogprobs[] {
    return computePromptLogprobs(rows, vocab, nextTokens, num);
  }
}
