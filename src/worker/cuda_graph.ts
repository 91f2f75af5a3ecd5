// CUDA graphs for decode steps (vLLM's CUDAGraphRunner): one graph per batch-size
// bucket, each replaying embedding -> layers -> norm -> lm_head over static input
// buffers, so that a decode step costs one launch instead of hundreds.
import type { AttentionMetadata, AttentionBackend } from '../attention/backends/backend.js';
import type { ForwardContext, LayerKVCache } from '../model_executor/forward_context.js';
import type { CausalLM } from '../model_executor/models/interface.js';
import { type Addr, check, DType, type NativeOps, Tensor, type Workspace } from '../native/index.js';
import { initLogger } from '../logger.js';
import type { BatchInputs } from './input_batch.js';

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
  /** [inputIds B | positions B | slotMapping B | queryStartLoc B+1 | seqLens B | blockTables B*W] for the largest bucket. */
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
    this.inputs = Tensor.zeros(ops, [this.layoutLength(B)], DType.I32);
  }

  private layoutLength(B: number): number {
    return 5 * B + 1 + B * this.maxBlocksPerSeq;
  }

  bucketFor(numReqs: number): number | null {
    return this.sizes.find((s) => s >= numReqs) ?? null;
  }

  /** A pure decode step that every request samples from, small enough for a bucket. */
  canRun(b: BatchInputs): boolean {
    return b.maxQueryLen === 1 && b.promptLogprobRows.length === 0 && b.samplingReqs.length === b.reqs.length &&
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

  /** Writes a bucket's inputs (padded: slot -1 writes nothing, length 1 over the null block). */
  private upload(B: number, b: BatchInputs | null): void {
    const W = this.maxBlocksPerSeq;
    const host = new Int32Array(this.layoutLength(B));
    const n = b?.reqs.length ?? 0;
    const ids = host.subarray(0, B);
    const pos = host.subarray(B, 2 * B);
    const slots = host.subarray(2 * B, 3 * B);
    const qsl = host.subarray(3 * B, 4 * B + 1);
    const lens = host.subarray(4 * B + 1, 5 * B + 1);
    const tables = host.subarray(5 * B + 1);
    slots.fill(-1);
    lens.fill(1);
    for (let i = 0; i <= B; i++) qsl[i] = i;
    if (b) {
      ids.set(b.inputIds);
      pos.set(b.positions);
      slots.set(b.slotMapping);
      lens.set(b.seqLens);
      for (let r = 0; r < n; r++) {
        tables.set(b.blockTables.subarray(r * b.maxBlocksPerSeq, (r + 1) * b.maxBlocksPerSeq), r * W);
      }
    }
    this.inputs.copyFromHost(host);
  }

  private forward(ws: Workspace, kvCaches: LayerKVCache[], B: number): Tensor {
    const W = this.maxBlocksPerSeq;
    const v = (off: number, shape: number[]) => this.inputs.view(shape, off);
    const attnMetadata: AttentionMetadata = {
      numSeqs: B,
      numTokens: B,
      queryStartLoc: v(3 * B, [B + 1]),
      seqLens: v(4 * B + 1, [B]),
      blockTables: v(5 * B + 1, [B, W]),
      maxBlocksPerSeq: W,
      slotMapping: v(2 * B, [B]),
      maxQueryLen: 1,
      maxSeqLen: this.maxModelLen,
      blockSize: this.blockSize,
    };
    const ctx: ForwardContext = { ops: this.ops, act: this.act, ws, attnMetadata, attnBackend: this.attnBackend, kvCaches };
    const hidden = this.model.forward(ctx, v(0, [B]), v(B, [B])); // [B, hidden]
    return this.model.computeLogits(ctx, hidden); // [B, vocab]
  }

  dispose(): void {
    for (const g of this.graphs.values()) this.ops.graphDestroy(g.graph);
    this.graphs.clear();
    this.inputs.dispose();
  }
}
