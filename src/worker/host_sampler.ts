// The host sampler behind the model runner: adapts the runner's request states to
// the Sampler (one generator per seeded request, rebuilt from its draw count).
import type { PositionLogprobs } from '../core/types.js';
import { computePromptLogprobs, generatorFor, Sampler, type SamplingState } from '../model_executor/layers/sampler.js';
import type { CachedRequestState } from './input_batch.js';
import type { StepSampler } from './step_sampler.js';

export class HostSampler implements StepSampler {
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
