// Linear layers. Weights are [outFeatures, inFeatures] as in PyTorch's nn.Linear;
// fused projections (qkv, gate_up) are one weight whose rows are the parts stacked.
import { check } from '../../native/index.js';
import type { Tensor } from '../../native/index.js';
import type { ForwardContext } from '../forward_context.js';

export class Linear {
  readonly outFeatures: number;
  readonly inFeatures: number;

  constructor(
    readonly weight: Tensor, // [outFeatures, inFeatures]
    readonly bias: Tensor | null = null, // [outFeatures]
  ) {
    [this.outFeatures, this.inFeatures] = weight.shape;
  }

  /** x [M, inFeatures] -> [M, outFeatures] (into `out` when given) */
  forward(ctx: ForwardContext, x: Tensor, out?: Tensor): Tensor {
    const M = x.shape[0];
    out ??= ctx.ws.alloc([M, this.outFeatures], ctx.act);
    check(ctx.ops, ctx.ops.linear(out.addr, x.addr, this.weight.addr, this.bias?.addr ?? 0,
      M, this.outFeatures, this.inFeatures, this.weight.dtype, ctx.act), 'linear');
    return out;
  }
}
