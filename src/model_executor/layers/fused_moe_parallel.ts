// The experts of a FusedMoE layer sharded by their intermediate dimension (vLLM's
// tensor-parallel FusedMoE): every rank holds every expert, each with its
// F / size slice of gate and up (rows) and of down (columns). Routing is computed
// on every rank from the replicated router, so each rank runs the same (token,
// expert) pairs over its slice and the block's output is a partial sum, all-reduced
// once after the block (layers/parallel_linear.ts AllReduced).
import type { Tensor } from '../../native/index.js';
import type { ShardPiece, WeightLoader } from '../weight_loader.js';
import type { FusedMoEConfig } from './fused_moe.js';
import { evenShard } from './parallel_linear.js';

/**
 * This rank's expert weights: w13 [E, 2 Fl, h] (each expert's gate slice then its
 * up slice), w2 [E, h, Fl], Fl = F / size; from the Hub's per-expert tensors or
 * transformers 5's stacked gate_up_proj [E, 2F, h] / down_proj [E, h, F].
 * c.intermediate is the full F.
 */
export function loadExpertShards(w: WeightLoader, prefix: string, c: FusedMoEConfig, names: readonly [string, string, string]):
  { w13: Tensor; w2: Tensor } {
  const { numExperts: E, hidden: h, intermediate: F } = c;
  const [s, e] = evenShard(F, w.tp, 'moe intermediate size');
  const Fl = e - s;
  const up: ShardPiece[] = [];
  const down: ShardPiece[] = [];
  const stacked = !w.source.isDummy && w.has(`${prefix}.gate_up_proj`);
  for (let x = 0; x < E; x++) {
    if (stacked) {
      const gu = { name: `${prefix}.gate_up_proj`, shape: [E, 2 * F, h], at: x, dim: 0 };
      up.push({ ...gu, start: s, end: e }, { ...gu, start: F + s, end: F + e });
      down.push({ name: `${prefix}.down_proj`, shape: [E, h, F], at: x, dim: 1, start: s, end: e });
    } else {
      const [g, u, d] = names.map((n) => `${prefix}.${x}.${n}.weight`);
      up.push({ name: g, shape: [F, h], dim: 0, start: s, end: e }, { name: u, shape: [F, h], dim: 0, start: s, end: e });
      down.push({ name: d, shape: [h, F], dim: 1, start: s, end: e });
    }
  }
  return { w13: w.shard(up, [E, 2 * Fl, h]), w2: w.shard(down, [E, h, Fl]) };
}
