// RMSNorm (optionally fused with the residual add) and LayerNorm.
import { check } from '../../native/index.js';
import type { Tensor } from '../../native/index.js';
import type { ForwardContext } from '../forward_context.js';

export class RMSNorm {
  constructor(
    readonly weight: Tensor, // [hidden]
    readonly eps: number,
    /** 1 for Gemma, whose norm scales by (1 + w). */
    readonly weightOffset = 0,
  ) {}

  /**
   * x [T, hidden] -> [T, hidden]. With a residual [T, hidden]: residual <- x + residual,
   * and the result is the norm of that sum (vLLM's fused_add_rms_norm). Into `out` when given.
   */
  forward(ctx: ForwardContext, x: Tensor, residual: Tensor | null = null, out?: Tensor): Tensor {
    const [T, hidden] = x.shape;
    out ??= ctx.ws.alloc([T, hidden], ctx.act);
    check(ctx.ops, ctx.ops.rmsNorm(out.addr, x.addr, residual?.addr ?? 0, this.weight.addr, T, hidden,
      this.eps, this.weightOffset, this.weight.dtype, ctx.act), 'rms_norm');
    return out;
  }
}

export class LayerNorm {
  constructor(
    readonly weight: Tensor, // [hidden]
    readonly bias: Tensor, // [hidden]
    readonly eps: number,
  ) {}

  /** Same residual convention as RMSNorm. x [T, hidden] -> [T, hidden] */
  forward(ctx: ForwardContext, x: Tensor, residual: Tensor | null = null): Tensor {
    const [T, hidden] = x.shape;
    const out = ctx.ws.alloc([T, hidden], ctx.act);
    check(ctx.ops, ctx.ops.layerNorm(out.addr, x.addr, residual?.addr ?? 0, this.weight.addr, this.bias.addr,
      T, hidden, this.eps, this.weight.dtype, ctx.act), 'layer_norm');
    return out;
  }
}
