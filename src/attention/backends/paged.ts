// The attention backend of both native libraries: vt_reshape_and_cache then one
// vt_attention call over the paged cache (prefill, chunked prefill and decode alike).
// The CPU and CUDA libraries share the C ABI, so one TypeScript backend serves both;
// the CUDA library picks its decode or prefill kernel from maxQueryLen.
import { check } from '../../native/index.js';
import type { Tensor } from '../../native/index.js';
import type { AttentionBackend, AttentionContext, AttentionLayerSpec, LayerKVCache, RowsView } from './backend.js';

export class PagedAttentionBackend implements AttentionBackend {
  readonly name = 'paged';

  forward(ctx: AttentionContext, spec: AttentionLayerSpec, q: RowsView, k: RowsView, v: RowsView, cache: LayerKVCache): Tensor {
    const { ops, act, attnMetadata: md } = ctx;
    const { numHeads, numKvHeads, headDim } = spec;
    check(ops, ops.reshapeAndCache(k.addr, v.addr, cache.key.addr, cache.value.addr, md.slotMapping.addr,
      md.numTokens, numKvHeads, headDim, k.stride, v.stride, act), 'reshape_and_cache');
    const out = ctx.ws.alloc([md.numTokens, numHeads * headDim], act); // [numTokens, numHeads * headDim]
    check(ops, ops.attention(out.addr, q.addr, cache.key.addr, cache.value.addr,
      md.queryStartLoc.addr, md.seqLens.addr, md.blockTables.addr, md.numSeqs, md.numTokens,
      md.maxQueryLen, md.maxSeqLen, numHeads, numKvHeads, headDim, md.blockSize, md.maxBlocksPerSeq,
      q.stride, spec.scale, spec.slidingWindow, spec.softCap, act), 'attention');
    return out;
  }
}
