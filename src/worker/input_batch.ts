// The runner's persistent per-request state and the host-side arrays of one step's
// batch (vLLM's InputBatch + _prepare_inputs, trimmed to what our kernels need).
import type { PoolingParams } from '../pooling_params.js';
import type { SamplingParams } from '../sampling_params.js';
import type { SchedulerOutput } from '../core/sched/output.js';

export interface CachedRequestState {
  reqId: string;
  promptTokenIds: number[];
  /** Sampled tokens (the runner appends its own samples, as vLLM's does). */
  outputTokenIds: number[];
  samplingParams: SamplingParams;
  eosTokenIds: number[];
  blockIds: number[];
  /** Tokens in the KV cache before this step. */
  numComputedTokens: number;
  /** Embedding requests: how to pool (they never sample; see ./pooler.ts). */
  poolingParams?: PoolingParams;
}

export function numTokensOf(s: CachedRequestState): number {
  return s.promptTokenIds.length + s.outputTokenIds.length;
}

export function tokenAt(s: CachedRequestState, i: number): number {
  const p = s.promptTokenIds.length;
  return i < p ? s.promptTokenIds[i] : s.outputTokenIds[i - p];
}

/** Host arrays of one step, ready to upload. */
export interface BatchInputs {
  reqs: CachedRequestState[];
  numTokens: number;
  inputIds: Int32Array; // [numTokens]
  positions: Int32Array; // [numTokens]
  slotMapping: Int32Array; // [numTokens]
  queryStartLoc: Int32Array; // [numReqs + 1]
  seqLens: Int32Array; // [numReqs]
  blockTables: Int32Array; // [numReqs, maxBlocksPerSeq]
  maxBlocksPerSeq: number;
  maxQueryLen: number;
  maxSeqLen: number;
  /** Index into reqs of the requests that sample this step (their chunk reaches the last known token). */
  samplingReqs: number[];
  /**
   * Rows (token indices) that sample: per sampling request, its last token's; with
   * drafts (speculative decoding), its last 1 + k tokens' (the last known token and
   * the k drafts: k + 1 positions verified at once).
   */
  sampleRows: number[];
  /** Per sampling request (the order of samplingReqs): its draft tokens this step ([] without). */
  draftTokenIds: number[][];
  /** True when some request verifies drafts this step. */
  hasDrafts: boolean;
  /** Per request with prompt logprobs in this chunk: the rows and the prompt tokens they predict. */
  promptLogprobRows: { req: number; rows: number[]; nextTokens: number[] }[];
}

/** Applies a SchedulerOutput to the persistent states (drop finished/preempted, add new, extend cached). */
export function updateStates(states: Map<string, CachedRequestState>, so: SchedulerOutput): void {
  for (const id of so.finishedReqIds) states.delete(id);
  for (const id of so.preemptedReqIds) states.delete(id);
  for (const r of so.scheduledNewReqs) {
    states.set(r.reqId, {
      reqId: r.reqId,
      promptTokenIds: r.promptTokenIds,
      outputTokenIds: [...r.outputTokenIds],
      samplingParams: r.samplingParams,
      eosTokenIds: r.eosTokenIds,
      blockIds: [...r.blockIds],
      numComputedTokens: r.numComputedTokens,
      ...(r.poolingParams ? { poolingParams: r.poolingParams } : {}),
    });
  }
  const c = so.scheduledCachedReqs;
  for (let i = 0; i < c.reqIds.length; i++) {
    const s = states.get(c.reqIds[i]);
    if (!s) throw new Error(`model runner has no state for scheduled request ${c.reqIds[i]}`);
    s.blockIds.push(...c.newBlockIds[i]);
    s.numComputedTokens = c.numComputedTokens[i];
  }
}

const NO_DRAFTS: number[] = [];

export function prepareInputs(states: Map<string, CachedRequestState>, so: SchedulerOutput, blockSize: number): BatchInputs {
  const ids = Object.keys(so.numScheduledTokens);
  const reqs = ids.map((id) => {
    const s = states.get(id);
    if (!s) throw new Error(`model runner has no state for scheduled request ${id}`);
    return s;
  });
  const T = so.totalNumScheduledTokens;
  const inputIds = new Int32Array(T);
  const positions = new Int32Array(T);
  const slotMapping = new Int32Array(T);
  const queryStartLoc = new Int32Array(reqs.length + 1);
  const seqLens = new Int32Array(reqs.length);
  let maxBlocksPerSeq = 1;
  let maxQueryLen = 0;
  let maxSeqLen = 0;
  const samplingReqs: number[] = [];
  const sampleRows: number[] = [];
  const promptLogprobRows: BatchInputs['promptLogprobRows'] = [];
  const draftTokenIds: number[][] = [];
  const specTokens = so.scheduledSpecDecodeTokens ?? {};
  let t = 0;
  reqs.forEach((s, r) => {
    const n = so.numScheduledTokens[s.reqId];
    const start = s.numComputedTokens;
    const known = numTokensOf(s);
    const drafts = specTokens[s.reqId] ?? NO_DRAFTS;
    queryStartLoc[r] = t;
    for (let j = 0; j < n; j++) {
      const pos = start + j;
      inputIds[t + j] = pos < known ? tokenAt(s, pos) : drafts[pos - known];
      positions[t + j] = pos;
      slotMapping[t + j] = s.blockIds[Math.floor(pos / blockSize)] * blockSize + (pos % blockSize);
    }
    const end = start + n;
    seqLens[r] = end;
    maxQueryLen = Math.max(maxQueryLen, n);
    maxSeqLen = Math.max(maxSeqLen, end);
    maxBlocksPerSeq = Math.max(maxBlocksPerSeq, Math.ceil(end / blockSize));
    if (end >= known + drafts.length && !s.poolingParams) {
      samplingReqs.push(r);
      draftTokenIds.push(drafts);
      for (let j = drafts.length; j >= 0; j--) sampleRows.push(t + n - 1 - j);
    }
    const P = s.promptTokenIds.length;
    if (s.samplingParams.promptLogprobs !== null && start < P - 1) {
      const rows: number[] = [];
      const nextTokens: number[] = [];
      for (let pos = start; pos < Math.min(end, P - 1); pos++) {
        rows.push(t + pos - start);
        nextTokens.push(s.promptTokenIds[pos + 1]);
      }
      promptLogprobRows.push({ req: r, rows, nextTokens });
    }
    t += n;
  });
  queryStartLoc[reqs.length] = t;
  const blockTables = new Int32Array(reqs.length * maxBlocksPerSeq);
  reqs.forEach((s, r) => {
    const nb = Math.min(s.blockIds.length, maxBlocksPerSeq);
    for (let b = 0; b < nb; b++) blockTables[r * maxBlocksPerSeq + b] = s.blockIds[b];
  });
  return {
    reqs, numTokens: T, inputIds, positions, slotMapping, queryStartLoc, seqLens, blockTables,
    maxBlocksPerSeq, maxQueryLen, maxSeqLen, samplingReqs, sampleRows, promptLogprobRows,
    draftTokenIds, hasDrafts: draftTokenIds.some((d) => d.length > 0),
  };
}
