// The model runner's one sampling seam. Every step's tokens are drawn where the
// logits are, by the native vt_sample (+ vt_logprobs), on the CPU as on CUDA (the
// two ops pick the same token for the same logits: csrc/sampling_math.h); rows that
// use a rare feature (penalties, logit bias, allowed ids, min tokens) and prompt
// logprobs go to the TypeScript host sampler (needsHostSampling, ./device_sampler.ts,
// is that one per-row choice). createSampler builds the seam; the runner only calls
// StepSampler.
//
// NOTE: on the CPU, vt_sample replaced the host sampler for ordinary rows (issue 13,
// benchmarks/sampler.ts, docs/benchmarks.md): 1.2-2.5x faster at plain temperature /
// top-p and with logprobs, about even with top-k 50, equal within noise end to end on
// tiny-llama-kjv; rare-feature rows cost 0-20% more (vt_sample's greedy pass first).
//
// NOTE: structured outputs (vLLM V1's apply_grammar_bitmask) mask the step's logits
// before DeviceSampler.sample (on both devices): ModelRunner.execute hands the scheduler's
// [numConstrained, ceil(vocab / 32)] int32 bitmask to vt_apply_token_bitmask
// (structured_output/apply_bitmask.ts), on the device where the logits are.
import type { PositionLogprobs } from '../core/types.js';
import type { SamplerOutput } from '../model_executor/layers/sampler.js';
import type { DType, NativeOps, Tensor, Workspace } from '../native/index.js';
import { DeviceSampler } from './device_sampler.js';
import { HostSampler } from './host_sampler.js';
import type { CachedRequestState } from './input_batch.js';

export interface StepSampler {
  /** logits [numReqs, vocab] (device, act; may be overwritten) -> one token (and optional logprobs) per request. */
  sample(ws: Workspace, logits: Tensor, reqs: CachedRequestState[]): SamplerOutput;
  /** rows [n, vocab] host f32: logprobs of each next prompt token plus the top `num`. */
  promptLogprobs(rows: Float32Array, vocab: number, nextTokens: number[], num: number): PositionLogprobs[];
}

/** The engine's sampler (engine-wide seed for unseeded requests). */
export function createSampler(ops: NativeOps, act: DType, seed: number): StepSampler {
  return new DeviceSampler(ops, act, new HostSampler(seed), seed);
}
