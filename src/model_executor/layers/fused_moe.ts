// FusedMoE: the experts of one mixture-of-experts layer as two stacked weights and
// one kernel per stage (vLLM's FusedMoE): router softmax + top-k and the token-to-expert
// permutation (one call), a grouped GEMM over all experts for gate_up (reading x through
// the permutation) and one for down, and the weighted un-permute and sum. Every row is computed alone in a fixed order, so a
// token's output does not depend on which other tokens share its experts.
import { check, DType, type Tensor } from '../../native/index.js';
import type { ForwardContext } from '../forward_context.js';
import { gatedActivation, type GatedAct } from './activation.js';
import type { WeightLoader } from '../weight_loader.js';

export interface FusedMoEConfig {
  numExperts: number; // E
  topK: number; // k experts per token
  hidden: number; // h
  intermediate: number; // F, one expert's MLP width
  /** Routing weights divided by their sum (Mixtral always; Qwen's norm_topk_prob). */
  renormalize: boolean;
  act: GatedAct;
}

/**
 * The stacked expert weights from the Hub's layout, one tensor per expert per
 * projection: `${prefix}.${e}.${gate|up|down}.weight`; or from transformers 5's
 * stacked `${prefix}.gate_up_proj` [E, 2F, h] / `${prefix}.down_proj` [E, h, F].
 * names: the checkpoint's projection names, [gate, up, down] (Mixtral: w1, w3, w2).
 */
export function loadExperts(w: WeightLoader, prefix: string, c: FusedMoEConfig, names: readonly [string, string, string]):
  { w13: Tensor; w2: Tensor } {
  const { numExperts: E, hidden: h, intermediate: F } = c;
  if (!w.source.isDummy && w.has(`${prefix}.gate_up_proj`)) {
    return { w13: w.get(`${prefix}.gate_up_proj`, [E, 2 * F, h]), w2: w.get(`${prefix}.down_proj`, [E, h, F]) };
  }
  const [g, u, d] = names;
  const gateUp: string[] = [];
  const down: string[] = [];
  for (let e = 0; e < E; e++) {
    gateUp.push(`${prefix}.${e}.${g}.weight`, `${prefix}.${e}.${u}.weight`);
    down.push(`${prefix}.${e}.${d}.weight`);
  }
  const w13 = w.concat(gateUp, gateUp.map(() => [F, h])).reshape([E, 2 * F, h]);
  const w2 = w.concat(down, down.map(() => [h, F])).reshape([E, h, F]);
  return { w13, w2 };
}

export class FusedMoE {
  constructor(
    readonly config: FusedMoEConfig,
    readonly w13: Tensor, // [E, 2F, h]: each expert's [gate | up] rows
    readonly w2: Tensor, // [E, h, F]
  ) {}

  /**
   * x [T, h], routerLogits [T, E] -> [T, h] (into `out` when given); plus
   * sigmoid(sharedGate[t]) * shared[t] when a shared expert's output [T, h] (and its
   * gate logits [T, 1], or null for weight 1) is given.
   */
  forward(ctx: ForwardContext, x: Tensor, routerLogits: Tensor, out?: Tensor,
    shared?: { out: Tensor; gate: Tensor | null }): Tensor {
    const { numExperts: E, topK: k, hidden: h, intermediate: F } = this.config;
    const T = x.shape[0];
    const P = T * k; // (token, slot) pairs = permuted rows
    const { ops, ws } = ctx;
    out ??= ws.alloc([T, h], ctx.act);
    const weights = ws.alloc([T, k], DType.F32); // [T, k]
    const ids = ws.alloc([T, k], DType.I32); // [T, k]
    const offsets = ws.alloc([E + 1], DType.I32); // [E + 1]
    const sortedTokens = ws.alloc([P], DType.I32); // [P]
    const invPerm = ws.alloc([P], DType.I32); // [P]
    // Top-k softmax then the permutation, in one launch on CUDA for small batches.
    check(ops, ops.moeRoute(weights.addr, ids.addr, offsets.addr, sortedTokens.addr, invPerm.addr, routerLogits.addr, T, E, k,
      this.config.renormalize ? 1 : 0, ctx.act), 'moe_route');
    // gate_up reads x's rows through the permutation (the gather fused into its loads).
    const gu = ws.alloc([P, 2 * F], ctx.act); // [P, 2F] rows grouped by expert
    check(ops, ops.moeGroupedGemmGather(gu.addr, x.addr, sortedTokens.addr, this.w13.addr, offsets.addr, P, E, 2 * F, h,
      this.w13.dtype, ctx.act), 'moe_grouped_gemm');
    const a = gatedActivation(ctx, this.config.act, gu); // [P, F]
    const y = ws.alloc([P, h], ctx.act); // [P, h]
    check(ops, ops.moeGroupedGemm(y.addr, a.addr, this.w2.addr, offsets.addr, P, E, h, F, this.w2.dtype, ctx.act),
      'moe_grouped_gemm');
    check(ops, ops.moeUnpermuteSum(out.addr, y.addr, weights.addr, invPerm.addr, shared?.out.addr ?? 0,
      shared?.gate?.addr ?? 0, T, k, h, ctx.act), 'moe_unpermute_sum');
    return out;
  }
}
