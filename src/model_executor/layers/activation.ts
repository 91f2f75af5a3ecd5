// Activations: gated (SiLU·mul, GELU-tanh·mul) over a fused [gate | up] input, and plain GELU-tanh.
import { check } from '../../native/index.js';
import type { Tensor } from '../../native/index.js';
import type { ForwardContext } from '../forward_context.js';

export type GatedAct = 'silu' | 'gelu_tanh';

/** Maps a config's hidden_act to the gated kernel (HF names). */
export function gatedActFor(hiddenAct: string): GatedAct {
  if (hiddenAct === 'silu' || hiddenAct === 'swish') return 'silu';
  if (hiddenAct === 'gelu_pytorch_tanh' || hiddenAct === 'gelu_tanh' || hiddenAct === 'gelu') return 'gelu_tanh';
  throw new Error(`unsupported hidden_act '${hiddenAct}' (supported: silu, gelu_pytorch_tanh)`);
}

/** x [T, 2d] = [gate | up] -> [T, d] */
export function gatedActivation(ctx: ForwardContext, act: GatedAct, x: Tensor): Tensor {
  const [T, twoD] = x.shape;
  const d = twoD / 2;
  const out = ctx.ws.alloc([T, d], ctx.act);
  const fn = act === 'silu' ? ctx.ops.siluAndMul : ctx.ops.geluTanhAndMul;
  check(ctx.ops, fn(out.addr, x.addr, T, d, ctx.act), `${act}_and_mul`);
  return out;
}

/** Elementwise GELU (tanh approximation), any shape. */
export function geluTanh(ctx: ForwardContext, x: Tensor): Tensor {
  const out = ctx.ws.alloc(x.shape, ctx.act);
  check(ctx.ops, ctx.ops.geluTanh(out.addr, x.addr, x.numel, ctx.act), 'gelu_tanh');
  return out;
}
