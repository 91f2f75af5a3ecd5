// Sampling where the logits are (CUDA and CPU alike): one vt_sample over the step's
// logits, so that only the sampled ids (and requested logprobs) cross to the host.
// Requests that use a rare feature (penalties, logit bias, allowed ids, min tokens)
// are sampled by the host sampler from their own rows.
import type { PositionLogprobs } from '../core/types.js';
import { generatorFor, type SamplerOutput, SamplingGenerator } from '../model_executor/layers/sampler.js';
import { hasPenalties } from '../model_executor/layers/sampling/logits_processors.js';
import { check, DType, type NativeOps, type Tensor, type Workspace } from '../native/index.js';
import { SAMPLING_EPS, type SamplingParams } from '../sampling_params.js';
import type { CachedRequestState } from './input_batch.js';
import type { HostSampler } from './host_sampler.js';

/** True when a request needs the host sampler this step. */
export function needsHostSampling(p: SamplingParams, numOutput: number): boolean {
  return p.allowedTokenIds !== null || p.logitBias !== null || (p.minTokens > 0 && numOutput < p.minTokens) || hasPenalties(p);
}

export class DeviceSampler {
  private readonly generator: SamplingGenerator;

  constructor(readonly ops: NativeOps, readonly act: DType, readonly host: HostSampler, seed: number) {
    // Not the host sampler's stream: unseeded draws only need to be reproducible per engine.
    this.generator = new SamplingGenerator(seed ^ 0x5eed);
  }

  /** logits [R, vocab] on the device (act) -> one token per request. */
  sample(ws: Workspace, logits: Tensor, reqs: CachedRequestState[]): SamplerOutput {
    const { ops, act } = this;
    const vocab = logits.shape[1];
    const R = reqs.length;
    // One upload: [temperature f32 | topK i32 | topP f32 | minP f32 | uniform f32], R each.
    const host = new ArrayBuffer(5 * R * 4);
    const f = new Float32Array(host);
    const k = new Int32Array(host, R * 4, R);
    const hostRows: number[] = [];
    reqs.forEach((r, i) => {
      const p = r.samplingParams;
      const onHost = needsHostSampling(p, r.outputTokenIds.length);
      if (onHost) hostRows.push(i);
      const greedy = p.temperature < SAMPLING_EPS;
      // A row sampled on the host below only needs vt_sample's cheap greedy pass (its
      // token is replaced); it still takes its draw, so the other rows' draws stay put.
      f[i] = greedy || onHost ? 0 : p.temperature;
      k[i] = p.topK > 0 ? p.topK : 0;
      f[2 * R + i] = p.topP;
      f[3 * R + i] = p.minP;
      // NOTE: one draw per randomly sampled token, as on the host, so seeded
      // requests rebuild their generator from the number of tokens so far.
      f[4 * R + i] = greedy ? 0 : (generatorFor(p, r.outputTokenIds.length) ?? this.generator).random();
    });
    const params = ws.alloc([5 * R], DType.F32);
    params.copyFromHost(f);
    const at = (j: number) => params.addr + j * R * 4;
    const ids = ws.alloc([R], DType.I32);
    check(ops, ops.sample(ids.addr, logits.addr, at(0), at(1), at(2), at(3), at(4), R, vocab, act), 'sample');
    const tokenIds = Array.from(ids.toI32());
    const logprobs: (PositionLogprobs | null)[] = reqs.map(() => null);

    const numLp = Math.max(-1, ...reqs.map((r) => (r.samplingParams.logprobs === -1 ? vocab : r.samplingParams.logprobs ?? -1)));
    if (numLp >= 0) {
      const K = Math.min(numLp, vocab);
      const outLp = ws.alloc([R, K + 1], DType.F32);
      const outIds = ws.alloc([R, K + 1], DType.I32);
      const ranks = ws.alloc([R], DType.I32);
      check(ops, ops.logprobs(outLp.addr, outIds.addr, ranks.addr, logits.addr, ids.addr, R, vocab, K, act), 'logprobs');
      const lp = outLp.toF32();
      const li = outIds.toI32();
      const rk = ranks.toI32();
      reqs.forEach((r, i) => {
        const n = r.samplingParams.logprobs;
        if (n === null) return;
        const take = 1 + (n === -1 ? K : Math.min(n, K));
        logprobs[i] = {
          tokenIds: Array.from(li.subarray(i * (K + 1), i * (K + 1) + take)),
          logprobs: Array.from(lp.subarray(i * (K + 1), i * (K + 1) + take)),
          rank: rk[i],
        };
      });
    }

    if (hostRows.length > 0) {
      // Rare features: bring those rows to the host as f32 and sample them there.
      const rows = ws.alloc([hostRows.length], DType.I32);
      rows.copyFromHost(Int32Array.from(hostRows));
      const picked = ws.alloc([hostRows.length, vocab], act);
      check(ops, ops.gatherRows(picked.addr, logits.addr, rows.addr, hostRows.length, vocab, act), 'gather_rows');
      const res = this.host.sample(picked.toF32(), vocab, hostRows.map((i) => reqs[i]));
      hostRows.forEach((i, j) => {
        tokenIds[i] = res.tokenIds[j];
        logprobs[i] = res.logprobs[j];
      });
    }
    return { tokenIds, logprobs };
  }

  /** rows [n, vocab] host f32: logprobs of each next prompt token plus the top `num` (the host sampler's). */
  promptLogprobs(rows: Float32Array, vocab: number, nextTokens: number[], num: number): PositionLogprobs[] {
    return this.host.promptLogprobs(rows, vocab, nextTokens, num);
  }
}
