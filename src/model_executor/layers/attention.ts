// The attention layer: hands q, k, v (views into the fused qkv rows, or apart) to the
// step's attention backend together with its layer's KV cache; already roped, or with
// the layer's rotary embedding for the backend to apply as it writes the cache.
import type { Tensor } from '../../native/index.js';
import type { AttentionLayerSpec, RopeSpec, RowsView } from '../../attention/backends/backend.js';
import type { ForwardContext } from '../forward_context.js';

export class Attention {
  readonly spec: AttentionLayerSpec;

  constructor(
    readonly layerIdx: number,
    numHeads: number,
    numKvHeads: number,
    headDim: number,
    opts: { scale?: number; slidingWindow?: number | null; softCap?: number | null } = {},
  ) {
    this.spec = {
      numHeads,
      numKvHeads,
      headDim,
      scale: opts.scale ?? 1 / Math.sqrt(headDim),
      slidingWindow: opts.slidingWindow ?? 0,
      softCap: opts.softCap ?? 0,
    };
  }

  /** q: T rows of numHeads * headDim; k, v: T rows of numKvHeads * headDim -> [T, numHeads * headDim] */
  forward(ctx: ForwardContext, q: RowsView, k: RowsView, v: RowsView): Tensor {
    return ctx.attnBackend.forward(ctx, this.spec, q, k, v, ctx.kvCaches[this.layerIdx]);
  }

  /**
   * forward on q and k before the rotation (and the per-head norms when rope.qkNorm), which
   * the backend runs with the cache write. positions [T] int32; q, k rotated in place.
   */
  forwardRope(ctx: ForwardContext, rope: RopeSpec, positions: Tensor, q: RowsView, k: RowsView, v: RowsView): Tensor {
    return ctx.attnBackend.forwardRope(ctx, this.spec, rope, positions, q, k, v, ctx.kvCaches[this.layerIdx]);
  }
}
