// ModelRunner: turns a SchedulerOutput into one forward pass over the batch
// (mixed prefill chunks and decodes), then samples on the host.
import type { ModelRunnerOutput, SchedulerOutput } from '../core/sched/output.js';
import type { PositionLogprobs } from '../core/types.js';
import type { AttentionBackend, AttentionMetadata } from '../attention/backends/backend.js';
import { check, DType, Tensor, type NativeOps, type Workspace } from '../native/index.js';
import type { ForwardContext, LayerKVCache } from '../model_executor/forward_context.js';
import type { CausalLM } from '../model_executor/models/interface.js';
import { type BatchInputs, type CachedRequestState, prepareInputs, updateStates } from './input_batch.js';
import { finishPooling } from '../pooling_params.js';
import type { CudaGraphRunner } from './cuda_graph.js';
import type { DeviceSampler } from './device_sampler.js';
import type { StepSampler } from './step_sampler.js';

/** Marks where a step's time goes (metrics/step_timer.ts's StepTimer, handed down by the engine core). */
export interface PhaseTimer {
  readonly enabled: boolean;
  /** Charges the time since the previous mark to `phase`. */
  mark(phase: string): void;
}

const NO_TIMER: PhaseTimer = { enabled: false, mark: () => {} };

export class ModelRunner {
  private readonly states = new Map<string, CachedRequestState>();

  constructor(
    readonly ops: NativeOps,
    readonly act: DType,
    readonly model: CausalLM,
    /** Per-layer paged KV cache (set by the worker once sized: initializeKvCache). */
    public kvCaches: LayerKVCache[],
    readonly blockSize: number,
    readonly vocabSize: number,
    readonly ws: Workspace,
    readonly attnBackend: AttentionBackend,
    readonly sampler: StepSampler,
    /** Samples on the device (CUDA); null: logits go to the host sampler. */
    readonly deviceSampler: DeviceSampler | null = null,
    readonly timer: PhaseTimer = NO_TIMER,
  ) {}

  /** Decode steps replay captured CUDA graphs when set (see Worker). */
  graphRunner: CudaGraphRunner | null = null;

  execute(so: SchedulerOutput): ModelRunnerOutput {
    updateStates(this.states, so);
    if (so.totalNumScheduledTokens === 0) return { reqIds: [], sampledTokenIds: [], logprobs: [], promptLogprobs: {} };
    const batch = prepareInputs(this.states, so, this.blockSize);
    const timer = this.timer;
    timer.mark('prepare');
    try {
      const { sampleLogits, promptLogits } = this.forward(batch);
      timer.mark('forward');
      if (timer.enabled) {
        // Timing mode only: wait for the device so that enqueue and execution are told apart.
        this.ops.synchronize();
        timer.mark('device');
      }
      const out = this.sample(batch, sampleLogits, promptLogits);
      timer.mark('sample');
      return out;
    } finally {
      this.ws.reset();
    }
  }

  /** Runs the model; returns the sampling rows' logits (on the device) and the prompt-logprob rows' (host f32). */
  private forward(b: BatchInputs): { sampleLogits: Tensor | null; promptLogits: Float32Array } {
    const { ops, ws } = this;
    if (this.graphRunner?.canRun(b)) return { sampleLogits: this.graphRunner.run(ws, b), promptLogits: new Float32Array(0) };
    const numReqs = b.reqs.length;
    const T = b.numTokens;
    const promptRows = b.promptLogprobRows.flatMap((p) => p.rows);
    const rows = [...promptRows, ...b.sampleRows];
    // NOTE: all int32 inputs travel in one host-to-device copy:
    // [inputIds T | positions T | slotMapping T | queryStartLoc S+1 | seqLens S | rows R | blockTables S*W]
    const parts = [b.inputIds, b.positions, b.slotMapping, b.queryStartLoc, b.seqLens, Int32Array.from(rows), b.blockTables];
    const packed = new Int32Array(parts.reduce((a, p) => a + p.length, 0));
    const offsets: number[] = [];
    parts.reduce((off, p) => {
      offsets.push(off);
      packed.set(p, off);
      return off + p.length;
    }, 0);
    const dev = ws.alloc([packed.length], DType.I32);
    dev.copyFromHost(packed);
    const view = (i: number, shape: number[]) => dev.view(shape, offsets[i]);
    const attnMetadata: AttentionMetadata = {
      numSeqs: numReqs,
      numTokens: T,
      queryStartLoc: view(3, [numReqs + 1]),
      seqLens: view(4, [numReqs]),
      blockTables: view(6, [numReqs, b.maxBlocksPerSeq]),
      maxBlocksPerSeq: b.maxBlocksPerSeq,
      slotMapping: view(2, [T]),
      maxQueryLen: b.maxQueryLen,
      maxSeqLen: b.maxSeqLen,
      blockSize: this.blockSize,
    };
    const ctx: ForwardContext = { ops, act: this.act, ws, attnMetadata, attnBackend: this.attnBackend, kvCaches: this.kvCaches };
    const hidden = this.model.forward(ctx, view(0, [T]), view(1, [T])); // [numTokens, hidden]
    if (b.poolingRows.length > 0) this.pool(b, hidden);
    if (rows.length === 0) return { sampleLogits: null, promptLogits: new Float32Array(0) };
    const width = hidden.shape[1];
    const picked = ws.alloc([rows.length, width], this.act); // [numRows, hidden]
    check(ops, ops.gatherRows(picked.addr, hidden.addr, view(5, [rows.length]).addr, rows.length, width, this.act), 'gather_rows');
    const logits = this.model.computeLogits(ctx, picked); // [numRows, vocab] on the device
    const V = this.vocabSize;
    return {
      promptLogits: promptRows.length ? logits.view([promptRows.length, V]).toF32() : new Float32Array(0),
      sampleLogits: logits.view([b.sampleRows.length, V], promptRows.length * V),
    };
  }

  private sample(b: BatchInputs, sampleLogits: Tensor | null, promptLogits: Float32Array): ModelRunnerOutput {
    const reqIds = b.reqs.map((r) => r.reqId);
    const sampledTokenIds: number[][] = b.reqs.map(() => []);
    const logprobs: (PositionLogprobs[] | null)[] = b.reqs.map(() => null);
    if (sampleLogits && b.samplingReqs.length > 0) {
      const states = b.samplingReqs.map((r) => b.reqs[r]);
      const res = this.deviceSampler
        ? this.deviceSampler.sample(this.ws, sampleLogits, this.vocabSize, states)
        : this.sampler.sample(sampleLogits.toF32(), this.vocabSize, states);
      b.samplingReqs.forEach((r, i) => {
        const tok = res.tokenIds[i];
        sampledTokenIds[r] = [tok];
        b.reqs[r].outputTokenIds.push(tok);
        const lp = res.logprobs[i];
        if (lp) logprobs[r] = [lp];
      });
    }
    const promptLogprobs: Record<string, PositionLogprobs[]> = {};
    let offset = 0;
    for (const p of b.promptLogprobRows) {
      const s = b.reqs[p.req];
      const rows = promptLogits.subarray(offset * this.vocabSize, (offset + p.rows.length) * this.vocabSize);
      promptLogprobs[s.reqId] = this.sampler.promptLogprobs(rows, this.vocabSize, p.nextTokens, s.samplingParams.promptLogprobs ?? 0);
      offset += p.rows.length;
    }
    const pooledOutputs: Record<string, number[]> = {};
    for (const p of b.poolingRows) {
      const s = b.reqs[p.req];
      if (p.complete) pooledOutputs[s.reqId] = finishPooling(s.poolSum!, s.poolCount!, s.poolingParams!);
    }
    return { reqIds, sampledTokenIds, logprobs, promptLogprobs, pooledOutputs };
  }

  /** Adds this step's hidden rows of embedding requests to their running sums. hidden [T, hidden] */
  private pool(b: BatchInputs, hidden: Tensor): void {
    const rows = b.poolingRows.flatMap((p) => p.rows);
    if (rows.length === 0) return;
    const width = hidden.shape[1];
    const idx = this.ws.alloc([rows.length], DType.I32);
    idx.copyFromHost(Int32Array.from(rows));
    const picked = this.ws.alloc([rows.length, width], this.act); // [numPooledRows, hidden]
    check(this.ops, this.ops.gatherRows(picked.addr, hidden.addr, idx.addr, rows.length, width, this.act), 'gather_rows');
    const host = picked.toF32();
    let k = 0;
    for (const p of b.poolingRows) {
      const s = b.reqs[p.req];
      s.poolSum ??= new Float64Array(width);
      for (const _ of p.rows) {
        for (let d = 0; d < width; d++) s.poolSum[d] += host[k * width + d];
        k++;
      }
      s.poolCount = (s.poolCount ?? 0) + p.rows.length;
    }
  }

  /** Requests the runner holds state for (for tests and leak checks). */
  get numCachedRequests(): number {
    return this.states.size;
  }
}
