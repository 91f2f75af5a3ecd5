// CUDA graphs for decode steps (vLLM's CUDAGraphRunner): one graph per batch-size
// bucket, each replaying embedding -> layers -> norm -> lm_head over static input
// buffers, so that a decode step costs one launch instead of hundreds.
import type { AttentionBackend } from '../attention/backends/backend.js';
import type { ForwardContext, LayerKVCache } from '../model_executor/forward_context.js';
import type { CausalLM } from '../model_executor/models/interface.js';
import { type Addr, check, DType, type NativeOps, Tensor, type Workspace } from '../native/index.js';
import { initLogger } from '../logger.js';
import type { BatchInputs } from './input_batch.js';
import { attentionMetadataOf, deviceStepInputs, type StepInputLayout, stepInputLength, writeStepInputs } from './step_inputs.js';

const logger = initLogger('cuda_graph');

/** Decode batch sizes that get a graph (a batch runs in the smallest bucket that holds it). */
export const CAPTURE_SIZES = [1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 160, 192, 224, 256, 320, 384, 448, 512];

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
    this.sizes = CAPTURE_SIZES.filter((s) => s <= maxNumSeqs);
    const B = this.sizes[this.sizes.length - 1] ?? 0;
    this.inputs = Tensor.zeros(ops, [stepInputLength(this.layout(B))], DType.I32);
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

  /** Captures every bucket (each run once eagerly first: cuBLASLt plans and lazy conversions happen on first use). */
  captureAll(ws: Workspace, kvCaches: LayerKVCache[]): void {
    const t0 = performance.now();
    for (const B of [...this.sizes].reverse()) {
      this.upload(B, null);
      ws.reset();
      this.forward(ws, kvCaches, B);
      check(this.ops, this.ops.synchronize(), 'synchronize');
      ws.reset();
      check(this.ops, this.ops.graphBegin(), `begin CUDA graph capture (batch ${B})`);
      const logits = this.forward(ws, kvCaches, B);
      const graph = this.ops.graphEnd();
      if (!graph) throw new Error(`CUDA graph capture failed (batch ${B}): ${this.ops.lastError()}`);
      this.graphs.set(B, { graph, logits, wsMark: ws.mark() });
      ws.reset();
    }
    ws.freeze();
    logger.info(`captured ${this.graphs.size} CUDA graphs for decode batch sizes ${this.sizes.join(', ')} in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  }

  /** Replays the bucket's graph for a decode batch; returns its logits [numReqs, vocab] (device). */
  run(ws: Workspace, b: BatchInputs): Tensor {
    const B = this.bucketFor(b.reqs.length)!;
    const g = this.graphs.get(B);
    if (!g) throw new Error(`no CUDA graph for batch size ${B}`);
    this.upload(B, b);
    check(this.ops, this.ops.graphLaunch(g.graph), 'launch CUDA graph');
    ws.restore(g.wsMark);
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
  }
}
