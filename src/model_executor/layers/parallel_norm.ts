// The RMSNorm over a whole sharded projection (OLMo 2's q_norm / k_norm span all
// heads): this rank's [T, cols / size] is all-gathered to [size, T, cols / size],
// laid out as [T, cols], normed with the whole weight, and this rank's columns are
// copied back out (vLLM's Olmo2Attention does the same gather, norm and split).
import { check, DTYPE_BYTES, type Tensor } from '../../native/index.js';
import type { Communicator } from '../../distributed/communicator.js';
import type { ForwardContext } from '../forward_context.js';
import { RMSNorm } from './layernorm.js';

export class GatheredRMSNorm extends RMSNorm {
  constructor(
    weight: Tensor, // [cols]: the whole projection's
    eps: number,
    weightOffset: number,
    readonly comm: Communicator,
  ) {
    super(weight, eps, weightOffset);
  }

  /** x [T, cols / size] -> [T, cols / size]: this rank's columns of the whole row's norm */
  override forward(ctx: ForwardContext, x: Tensor): Tensor {
    const [T, local] = x.shape;
    const size = this.comm.worldSize;
    const es = DTYPE_BYTES[ctx.act];
    const gathered = ctx.ws.alloc([size, T, local], ctx.act); // [size, T, local]
    this.comm.allGather(x, gathered);
    const full = ctx.ws.alloc([T, size * local], ctx.act); // [T, cols]
    for (let r = 0; r < size; r++) {
      check(ctx.ops, ctx.ops.copy2d(full.addr + r * local * es, size * local * es, gathered.addr + r * T * local * es, local * es, local * es, T), 'copy_2d');
    }
    const normed = super.forward(ctx, full); // [T, cols]
    const out = ctx.ws.alloc([T, local], ctx.act); // [T, local]
    const rank = this.comm.rank;
    check(ctx.ops, ctx.ops.copy2d(out.addr, local * es, normed.addr + rank * local * es, size * local * es, local * es, T), 'copy_2d');
    return out;
  }
}
