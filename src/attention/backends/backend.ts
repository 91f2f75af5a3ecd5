// The attention backend seam: what the runner hands to attention layers each step,
// and the interface a backend (cpu, cuda) implements over the native ops.
// The attention layer owns these records; model_executor/forward_context.ts builds on them.
import type { DType, NativeOps, Tensor, Workspace } from '../../native/index.js';

/** Device tensors describing one step's batch (vLLM's FlashAttentionMetadata, trimmed). */
export interface AttentionMetadata {
  numSeqs: number;
  numTokens: number;
  /** [numSeqs + 1] int32: query rows of sequence i are [queryStartLoc[i], queryStartLoc[i+1]). */
  queryStartLoc: Tensor;
  /** [numSeqs] int32: tokens in the cache for each sequence, this step's included. */
  seqLens: Tensor;
  /** [numSeqs, maxBlocksPerSeq] int32 */
  blockTables: Tensor;
  maxBlocksPerSeq: number;
  /** [numTokens] int32: cache slot of each token (block * blockSize + offset). */
  slotMapping: Tensor;
  maxQueryLen: number;
  maxSeqLen: number;
  blockSize: number;
}

/** One layer's paged KV cache: two [numBlocks, blockSize, numKvHeads, headDim] tensors. */
export interface LayerKVCache {
  key: Tensor;
  value: Tensor;
}

/** What a backend reads of the step's state (the model's ForwardContext extends it). */
export interface AttentionContext {
  ops: NativeOps;
  /** Activation dtype (F32 on the CPU, BF16/F16 on CUDA). */
  act: DType;
  /** Scratch memory for this step's intermediates. */
  ws: Workspace;
  attnMetadata: AttentionMetadata;
}

export interface AttentionLayerSpec {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  scale: number;
  slidingWindow: number;
  softCap: number;
}

/**
 * Rows of one projection inside a possibly wider tensor: row t starts at
 * addr + t * stride elements (stride = width for a contiguous tensor, the fused
 * qkv width for a slice of it).
 */
export interface RowsView {
  addr: number;
  stride: number;
}

/** Views of q, k and v inside a fused qkv tensor [T, (numHeads + 2 * numKvHeads) * headDim]. */
export function splitQkv(qkv: Tensor, numHeads: number, numKvHeads: number, headDim: number, eltBytes: number): { q: RowsView; k: RowsView; v: RowsView } {
  const stride = qkv.shape[1];
  const k = qkv.addr + numHeads * headDim * eltBytes;
  return { q: { addr: qkv.addr, stride }, k: { addr: k, stride }, v: { addr: k + numKvHeads * headDim * eltBytes, stride } };
}

/** Per-head RMSNorm of q and k before the rotation (Qwen3's, Gemma 3's q_norm / k_norm). */
export interface QKNormSpec {
  qWeight: Tensor; // [headDim]
  kWeight: Tensor; // [headDim]
  eps: number;
  /** 1 for Gemma's (1 + w). */
  weightOffset: number;
}

/** A layer's rotary embedding as a backend applies it to q and k, fused with the cache write. */
export interface RopeSpec {
  cosSinCache: Tensor; // [maxPosition, rotaryDim] f32: cos, then sin
  rotaryDim: number;
  isNeox: boolean;
  qkNorm: QKNormSpec | null;
}

export interface AttentionBackend {
  readonly name: string;
  /**
   * Writes this step's keys and values into the cache and attends.
   * q: numTokens rows of numHeads * headDim; k, v: numTokens rows of numKvHeads * headDim (q and k already roped)
   * returns [numTokens, numHeads * headDim]
   */
  forward(ctx: AttentionContext, spec: AttentionLayerSpec, q: RowsView, k: RowsView, v: RowsView, cache: LayerKVCache): Tensor;
  /**
   * forward for q and k as the projection left them: rotates them in place (after the
   * per-head norms when rope.qkNorm) as it writes the cache, then attends.
   * positions [numTokens] int32; q, k, v as in forward
   */
  forwardRope(ctx: AttentionContext, spec: AttentionLayerSpec, rope: RopeSpec, positions: Tensor, q: RowsView, k: RowsView, v: RowsView,
    cache: LayerKVCache): Tensor;
}
