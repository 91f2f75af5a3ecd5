// The attention backend of both native libraries: vt_reshape_and_cache then one
// vt_attention call over the paged cache (prefill, chunked prefill and decode alike).
// The CPU and CUDA libraries share the C ABI, so one TypeScript backend serves both;
// the CUDA library picks its decode or prefill kernel from maxQueryLen.
import { check, DTYPE_BYTES } from '../../native/index.js';
import type { Tensor } from '../../native/index.js';
import type { ForwardContext, LayerKVCache } from '../../model_executor/forward_context.js';
import type { AttentionBackend, AttentionLayerSpec } from './backend.js';

export class PagedAttentionBackend implements AttentionBackend {
  readonly name = 'paged';

  forward(ctx: ForwardContext, spec: AttentionLayerSpec, qkv: Tensor, cache: LayerKVCache): Tensor {
    const { ops, act, attnMetadata: md } = ctx;
    const { numHeads, numKvHeads, headDim } = spec;
    const qSize = numHeads * headDim;
    const kvSize = numKvHeads * headDim;
    const stride = qSize + 2 * kvSize; // qkv row width
    const elt = DTYPE_BYTES[act];
    const kAddr = qkv.addr + qSize * elt;
    const vAddr = kAddr + kvSize * elt;
    check(ops, ops.reshapeAndCache(kAddr, vAddr, cache.key.addr, cache.value.addr, md.slotMapping.addr,
      md.numTokens, numKvHeads, headDim, stride, stride, act), 'reshape_and_cache');
    const out = ctx.ws.alloc([md.numTokens, qSize], act); // [numTokens, numHeads * headDim]
    check(ops, ops.attention(out.addr, qkv.addr, cache.key.addr, cache.value.addr,
      md.queryStartLoc.addr, md.seqLens.addr, md.blockTables.addr, md.numSeqs, md.numTokens,
      md.maxQueryLen, md.maxSeqLen, numHeads, numKvHeads, headDim, md.blockSize, md.maxBlocksPerSeq,
      stride, spec.scale, spec.slidingWindow, spec.softCap, act), 'attention');
    return out;
  }
}
