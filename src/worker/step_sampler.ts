// The sampling interface the model runner calls once per step (host f32 logits).
import type { PositionLogprobs } from '../core/types.js';
import type { CachedRequestState } from './input_batch.js';

export interface StepSampler {
  /** logits [numReqs, vocab] -> one token (and optional logprobs) per request. */
  sample(logits: Float32Array, vocab: number, reqs: CachedRequestState[]): { tokenIds: number[]; logprobs: (PositionLogprobs | null)[] };
  /** rows [n, vocab]: logprobs of each next prompt token plus the top `num`. */
  promptLogprobs(rows: Float32Array, vocab: number, nextTokens: number[], num: number): PositionLogprobs[];
}
