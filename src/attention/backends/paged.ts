// The attention backend of both native libraries: the cache write (vt_reshape_and_cache,
// or fused with the rotary embedding: vt_rope_and_cache / vt_qk_norm_rope_and_cache) then
// one vt_attention call over the paged cache (prefill, chunked prefill and decode alike).
// The CPU and CUDA libraries share the C ABI, so one TypeScript backend serves both;
// the CUDA library picks its decode or prefill kernel from maxQueryLen.
import { check } from '../../native/index.js';
import type { Tensor } from '../../native/index.js';
import type { AttentionBackend, AttentionContext, AttentionLayerSpec, LayerKVCache, RopeSpec, RowsView } from './backend.js';

export class PagedAttentionBackend implements AttentionBackend {
  readonly name = 'paged';

  forward(ctx: AttentionContext, spec: AttentionLayerSpec, q: RowsView, k: RowsView, v: RowsView, cache: LayerKVCache): Tensor {
    const { ops, act, attnMetadata: md } = ctx;
    check(ops, ops.reshapeAndCache(k.addr, v.addr, cache.key.addr, cache.value.addr, md.slotMapping.addr,
      md.numTokens, spec.numKvHeads, spec.headDim, k.stride, v.stride, act), 'reshape_and_cache');
    return this.attend(ctx, spec, q, cache);
  }

  // NOTE: one launch where rope (or q/k norm + rope) then reshape_and_cache were two; the same bits.
  forwardRope(ctx: AttentionContext, spec: AttentionLayerSpec, rope: RopeSpec, positions: Tensor, q: RowsView, k: RowsView, v: RowsView,
    cache: LayerKVCache): Tensor {
    const { ops, act, attnMetadata: md } = ctx;
    const { numHeads: H, numKvHeads: KV, headDim: D } = spec;
    const neox = rope.isNeox ? 1 : 0, n = rope.qkNorm, T = md.numTokens;
    if (n) {
      check(ops, ops.qkNormRopeAndCache(q.addr, k.addr, v.addr, n.qWeight.addr, n.kWeight.addr, positions.addr, rope.cosSinCache.addr,
        cache.key.addr, cache.value.addr, md.slotMapping.addr, T, H, KV, D, rope.rotaryDim, q.stride, k.stride, v.stride, n.eps,
        n.weightOffset, neox, n.qWeight.dtype, act), 'qk_norm_rope_and_cache');
    } else {
      check(ops, ops.ropeAndCache(q.addr, k.addr, v.addr, positions.addr, rope.cosSinCache.addr, cache.key.addr, cache.value.addr,
        md.slotMapping.addr, T, H, KV, D, rope.rotaryDim, q.stride, k.stride, v.stride, neox, act), 'rope_and_cache');
    }
    return this.attend(ctx, spec, q, cache);
  }

  /** One attention call over the paged cache (this step's k, v already in it) -> [numTokens, numHeads * headDim] */
  private attend(ctx: AttentionContext, spec: AttentionLayerSpec, q: RowsView, cache: LayerKVCache): Tensor {
    const { ops, act, attnMetadata: md } = ctx;
    const { numHeads, numKvHeads, headDim } = spec;
    const out = ctx.ws.alloc([md.numTokens, numHeads * headDim], act); // [numTokens, numHeads * headDim]
    check(ops, ops.attention(out.addr, q.addr, cache.key.addr, cache.value.addr,
      md.queryStartLoc.addr, md.seqLens.addr, md.blockTables.addr, md.numSeqs, md.numTokens,
      md.maxQueryLen, md.maxSeqLen, numHeads, numKvHeads, headDim, md.blockSize, md.maxBlocksPerSeq,
      q.stride, spec.scale, spec.slidingWindow, spec.softCap, act), 'attention');
    return out;
  }
}
