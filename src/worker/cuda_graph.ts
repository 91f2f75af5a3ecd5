// CUDA graphs for decode steps (vLLM's CUDAGraphRunner): one graph per batch-size
// bucket, each replaying embedding -> layers -> norm -> lm_head over static input
// buffers, so that a decode step costs one launch instead of hundreds. The CPU
// library's graphs (csrc/cpu/graph.cpp: the ops recorded, replayed inside one call)
// go through the same runner, with a workspace of their own (see captureAll).
import type { AttentionBackend } from '../attention/backends/backend.js';
import type { ForwardContext, LayerKVCache } from '../model_executor/forward_context.js';
import type { CausalLM } from '../model_executor/models/interface.js';
import { type Addr, check, DType, type NativeOps, Tensor, Workspace } from '../native/index.js';
import { initLogger } from '../logger.js';
import type { BatchInputs } from './input_batch.js';
import { attentionMetadataOf, deviceStepInputs, type StepInputLayout, stepInputLength, writeStepInputs } from './step_inputs.js';

const logger = initLogger('cuda_graph');

/** Decode batch sizes that get a graph (a batch runs in the smallest bucket that holds it). */
export const CAPTURE_SIZES = [1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 160, 192, 224, 256, 320, 384, 448, 512];
/** CPU: larger decode batches run eagerly (their per-op call cost is small beside the work; their logits would be memory held twice). */
const CPU_MAX_CAPTURE_SIZE = 64;

interface CapturedGraph {
  graph: Addr;
  /** [bucket, vocab] logits the graph writes. */
  logits: Tensor;
  /** Workspace state right after the capture: later allocations must not overlap the logits. */
  wsMark: ReturnType<Workspace['mark']>;
}

export class CudaGraphRunner {
  private readonly graphs = new Map<number, CapturedGraph>();
  readonly sizes: number[];
  /** The step inputs (./step_inputs.ts) of the largest bucket; a smaller bucket uses its front. */
  private readonly inputs: Tensor;
  /** CPU: the graphs' own scratch arena (the engine's grows and moves with eager steps); CUDA: null, the engine's. */
  private readonly ownWs: Workspace | null;
  /** Graph launches so far (decode steps that ran as a replay). */
  numLaunches = 0;

  constructor(
    readonly ops: NativeOps,
    readonly act: DType,
    readonly model: CausalLM,
    readonly attnBackend: AttentionBackend,
    readonly blockSize: number,
    /** Block-table width of every graph: enough for maxModelLen. */
    readonly maxBlocksPerSeq: number,
    readonly maxModelLen: number,
    maxNumSeqs: number,
  ) {
    const maxSize = ops.device === 'cpu' ? Math.min(maxNumSeqs, CPU_MAX_CAPTURE_SIZE) : maxNumSeqs;
    this.sizes = CAPTURE_SIZES.filter((s) => s <= maxSize);
    const B = this.sizes[this.sizes.length - 1] ?? 0;
    this.inputs = Tensor.zeros(ops, [stepInputLength(this.layout(B))], DType.I32);
    this.ownWs = ops.device === 'cpu' ? new Workspace(ops) : null;
  }

  bucketFor(numReqs: number): number | null {
    return this.sizes.find((s) => s >= numReqs) ?? null;
  }

  /**
   * A pure decode step that every request samples from, small enough for a bucket.
   * NOTE: a speculative step (1 + k query tokens per request with drafts) runs eagerly.
   */
  canRun(b: BatchInputs): boolean {
    return b.maxQueryLen === 1 && !b.hasDrafts && b.promptLogprobRows.length === 0 && b.samplingReqs.length === b.reqs.length &&
      b.maxBlocksPerSeq <= this.maxBlocksPerSeq && this.bucketFor(b.reqs.length) !== null;
  }

  /**
   * Captures every bucket, largest first. CUDA: each run once eagerly first (cuBLASLt
   * plans and lazy conversions happen on first use). CPU: a capture runs nothing, so
   * the largest bucket is captured twice instead, the first time only to grow the
   * graphs' workspace to its size (a capture that grows it leaves a chunk the next
   * reset replaces).
   */
  captureAll(engineWs: Workspace, kvCaches: LayerKVCache[]): void {
    const t0 = performance.now();
    const ws = this.ownWs ?? engineWs;
    const buckets = [...this.sizes].reverse();
    if (this.ownWs && buckets.length) buckets.unshift(buckets[0]);
    for (const [i, B] of buckets.entries()) {
      this.upload(B, null);
      ws.reset();
      if (!this.ownWs) {
        this.forward(ws, kvCaches, B);
        check(this.ops, this.ops.synchronize(), 'synchronize');
        ws.reset();
      }
      check(this.ops, this.ops.graphBegin(), `begin ${this.ops.device} graph capture (batch ${B})`);
      const logits = this.forward(ws, kvCaches, B);
      const graph = this.ops.graphEnd();
      if (!graph) throw new Error(`${this.ops.device} graph capture failed (batch ${B}): ${this.ops.lastError()}`);
      if (this.ownWs && i === 0) check(this.ops, this.ops.graphDestroy(graph), 'destroy the sizing graph');
      else this.graphs.set(B, { graph, logits, wsMark: ws.mark() });
      ws.reset();
    }
    ws.freeze();
    logger.info(`captured ${this.graphs.size} ${this.ops.device === 'cuda' ? 'CUDA' : 'CPU'} graphs for decode batch sizes ${this.sizes.join(', ')} in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  }

  /** Replays the bucket's graph for a decode batch; returns its logits [numReqs, vocab] (device). */
  run(engineWs: Workspace, b: BatchInputs): Tensor {
    const B = this.bucketFor(b.reqs.length)!;
    const g = this.graphs.get(B);
    if (!g) throw new Error(`no graph for batch size ${B}`);
    this.upload(B, b);
    check(this.ops, this.ops.graphLaunch(g.graph), `launch ${this.ops.device} graph`);
    this.numLaunches++;
    // CUDA: later allocations of the step come after the logits the graph wrote.
    if (!this.ownWs) engineWs.restore(g.wsMark);
    return g.logits.view([b.reqs.length, g.logits.shape[1]]);
  }

  /** The bucket's layout of the static input buffer: B tokens of B sequences, the block-table width for maxModelLen. */
  private layout(B: number): StepInputLayout {
    return { numTokens: B, numSeqs: B, numRows: 0, maxBlocksPerSeq: this.maxBlocksPerSeq };
  }

  /** Writes a bucket's inputs (a batch smaller than the bucket is padded: see writeStepInputs). */
  private upload(B: number, b: BatchInputs | null): void {
    const layout = this.layout(B);
    const host = new Int32Array(stepInputLength(layout));
    writeStepInputs(host, layout, b);
    this.inputs.copyFromHost(host);
  }

  private forward(ws: Workspace, kvCaches: LayerKVCache[], B: number): Tensor {
    const layout = this.layout(B);
    const v = deviceStepInputs(this.inputs, layout);
    const attnMetadata = attentionMetadataOf(v, layout, { maxQueryLen: 1, maxSeqLen: this.maxModelLen, blockSize: this.blockSize });
    const ctx: ForwardContext = { ops: this.ops, act: this.act, ws, attnMetadata, attnBackend: this.attnBackend, kvCaches };
    const hidden = this.model.forward(ctx, v.inputIds, v.positions); // [B, hidden]
    return this.model.computeLogits(ctx, hidden); // [B, vocab]
  }

  dispose(): void {
    for (const g of this.graphs.values()) this.ops.graphDestroy(g.graph);
    this.graphs.clear();
    this.inputs.dispose();
    this.ownWs?.dispose();
  }
}
