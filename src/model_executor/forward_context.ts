// Per-step state handed down through the model's forward pass (passed, never global).
import type { AttentionMetadata } from '../attention/backends/backend.js';
import type { AttentionBackend } from '../attention/backends/backend.js';
import type { DType, NativeOps, Tensor, Workspace } from '../native/index.js';

/** One layer's paged KV cache: two [numBlocks, blockSize, numKvHeads, headDim] tensors. */
export interface LayerKVCache {
  key: Tensor;
  value: Tensor;
}

export interface ForwardContext {
  ops: NativeOps;
  /** Activation dtype (F32 on the CPU, BF16/F16 on CUDA). */
  act: DType;
  /** Scratch memory for this step's intermediates. */
  ws: Workspace;
  attnMetadata: AttentionMetadata;
  attnBackend: AttentionBackend;
  kvCaches: LayerKVCache[];
}
