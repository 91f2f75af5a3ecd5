// Token embedding (a row gather), optionally scaled (Gemma: sqrt(hidden)).
import { check } from '../../native/index.js';
import type { Tensor } from '../../native/index.js';
import type { ForwardContext } from '../forward_context.js';

export class VocabEmbedding {
  constructor(
    readonly weight: Tensor, // [vocab, hidden]
    readonly scale = 1,
  ) {}

  /** ids [T] int32 -> [T, hidden] */
  forward(ctx: ForwardContext, ids: Tensor): Tensor {
    const T = ids.shape[0];
    const hidden = this.weight.shape[1];
    const out = ctx.ws.alloc([T, hidden], ctx.act);
    check(ctx.ops, ctx.ops.embedding(out.addr, this.weight.addr, ids.addr, T, hidden, this.scale,
      this.weight.dtype, ctx.act), 'embedding');
    return out;
  }
}
