// The model runner's one sampling seam: createSampler decides, once per engine,
// whether a step's tokens are drawn on the device (vt_sample over the logits where
// they are) or from host f32 copies of them; the runner only calls StepSampler.
//
// NOTE: structured outputs (a per-request allowed-token grammar bitmask, as vLLM
// V1's apply_grammar_bitmask) belong here, applied to the step's logits before
// either path samples: a [numReqs, ceil(vocab / 32)] int32 bitmask (bit t % 32 of
// word t / 32 of row r set: token t allowed for request r) that sets every other
// logit of the row to -inf, on the device for the vt_sample path (no full-logits
// round trip) and on the host rows for the host path.
import type { PositionLogprobs } from '../core/types.js';
import type { SamplerOutput } from '../model_executor/layers/sampler.js';
import type { DType, NativeOps, Tensor, Workspace } from '../native/index.js';
import { DeviceSampler } from './device_sampler.js';
import { HostSampler } from './host_sampler.js';
import type { CachedRequestState } from './input_batch.js';

export interface StepSampler {
  /** logits [numReqs, vocab] (device, act; overwritten) -> one token (and optional logprobs) per request. */
  sample(ws: Workspace, logits: Tensor, reqs: CachedRequestState[]): SamplerOutput;
  /** rows [n, vocab] host f32: logprobs of each next prompt token plus the top `num`. */
  promptLogprobs(rows: Float32Array, vocab: number, nextTokens: number[], num: number): PositionLogprobs[];
}

/** Samples every request from a host f32 copy of its logits (the TypeScript sampler). */
class HostStepSampler implements StepSampler {
  constructor(readonly host: HostSampler) {}

  sample(_ws: Workspace, logits: Tensor, reqs: CachedRequestState[]): SamplerOutput {
    return this.host.sample(logits.toF32(), logits.shape[1], reqs);
  }

  promptLogprobs(rows: Float32Array, vocab: number, nextTokens: number[], num: number): PositionLogprobs[] {
    return this.host.promptLogprobs(rows, vocab, nextTokens, num);
  }
}

/** Samples with vt_sample where the logits are; rows with a rare feature go to the host sampler. */
class DeviceStepSampler implements StepSampler {
  constructor(readonly device: DeviceSampler, readonly host: HostSampler) {}

  sample(ws: Workspace, logits: Tensor, reqs: CachedRequestState[]): SamplerOutput {
    return this.device.sample(ws, logits, logits.shape[1], reqs);
  }

  promptLogprobs(rows: Float32Array, vocab: number, nextTokens: number[], num: number): PositionLogprobs[] {
    return this.host.promptLogprobs(rows, vocab, nextTokens, num);
  }
}

/** The engine's sampler: on the device where the library has vt_sample (CUDA), else on the host. */
export function createSampler(ops: NativeOps, act: DType, seed: number): StepSampler {
  const host = new HostSampler(seed);
  const onDevice = ops.device === 'cuda' && !ops.missing.has('sample');
  return onDevice ? new DeviceStepSampler(new DeviceSampler(ops, act, host, seed), host) : new HostStepSampler(host);
}
