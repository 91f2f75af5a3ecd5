// Tensor-parallel linear layers (vLLM's ColumnParallelLinear, QKVParallelLinear,
// MergedColumnParallelLinear, RowParallelLinear), built once at load time. A
// column-parallel layer is a plain Linear over this rank's rows of the weight (its
// output stays sharded: the heads / the MLP width of this rank); a row-parallel one
// holds this rank's columns, so its output is a partial sum that an all-reduce
// completes. At tensor-parallel size 1 each builder makes exactly the Linear the
// unsharded model always made (the same loader calls), so the TP=1 forward pass is
// unchanged; at size > 1 the builders cut the checkpoint's tensors (WeightLoader.shard).
import type { ModelConfig } from '../../config/types.js';
import type { Tensor } from '../../native/index.js';
import { commOf, type Communicator, type TensorParallel } from '../../distributed/communicator.js';
import type { ForwardContext } from '../forward_context.js';
import type { ShardPiece, WeightLoader } from '../weight_loader.js';
import { Linear } from './linear.js';

/**
 * Checkpoint tensors a fused weight is made of: fused name -> the parts, in row
 * order. The loader reads the fused tensor when the checkpoint has it (Phi-3 stores
 * qkv_proj and gate_up_proj), else stacks the parts.
 */
export const packedModules = {
  qkv_proj: ['q_proj', 'k_proj', 'v_proj'],
  gate_up_proj: ['gate_proj', 'up_proj'],
} as const;

/** Attention heads on one rank. KV heads fewer than ranks are replicated: rank r holds KV head floor(r * KV / size) (vLLM's num_kv_head_replicas). */
export interface LocalHeads {
  heads: number; // H / size
  kvHeads: number; // KV / size, or 1 when KV < size
  headStart: number; // this rank's first q head
  kvHeadStart: number; // this rank's first KV head
}

export function localHeads(numHeads: number, numKvHeads: number, tp: TensorParallel): LocalHeads {
  const { rank, size } = tp;
  const heads = numHeads / size;
  if (!Number.isInteger(heads)) throw new Error(`Total number of attention heads (${numHeads}) must be divisible by tensor parallel size (${size}).`);
  if (numKvHeads >= size) {
    const kvHeads = numKvHeads / size;
    if (!Number.isInteger(kvHeads)) {
      throw new Error(`Total number of key/value heads (${numKvHeads}) must be divisible by tensor parallel size (${size}).`);
    }
    return { heads, kvHeads, headStart: rank * heads, kvHeadStart: rank * kvHeads };
  }
  if (size % numKvHeads !== 0) {
    throw new Error(`Tensor parallel size (${size}) must be a multiple of the number of key/value heads (${numKvHeads}) to replicate them.`);
  }
  return { heads, kvHeads: 1, headStart: rank * heads, kvHeadStart: Math.floor((rank * numKvHeads) / size) };
}

/** This rank's [start, end) of a dimension split evenly (throws, in vLLM's words, when it does not divide). */
export function evenShard(total: number, tp: TensorParallel, what: string): [number, number] {
  const n = total / tp.size;
  if (!Number.isInteger(n)) throw new Error(`${what} (${total}) is not divisible by tensor parallel size (${tp.size}).`);
  return [tp.rank * n, (tp.rank + 1) * n];
}

/** Row-parallel: this rank's slice of the input features, the partial outputs summed over ranks. */
export class RowParallelLinear extends Linear {
  constructor(
    weight: Tensor, // [outFeatures, inFeatures / size]
    bias: Tensor | null, // [outFeatures] on rank 0 only, so that the sum adds it once
    readonly comm: Communicator,
  ) {
    super(weight, bias);
  }

  /** x [M, inFeatures / size] -> [M, outFeatures], all-reduced (into `out` when given) */
  override forward(ctx: ForwardContext, x: Tensor, out?: Tensor): Tensor {
    const y = super.forward(ctx, x, out);
    this.comm.allReduce(y);
    return y;
  }
}

/**
 * q, k and v of a layer, this rank's heads (the qkv_proj of QKVParallelLinear):
 * fused [(Hl + 2 KVl) * D, hidden] when `fused`, else three Linears (q/k norms need
 * them apart). The checkpoint's fused qkv_proj (Phi-3) is cut in place.
 */
export function qkvLinears(w: WeightLoader, cfg: ModelConfig, p: string, fused: boolean): Linear[] {
  const { hiddenSize: h, numAttentionHeads: H, numKeyValueHeads: KV, headDim: D } = cfg;
  const names = packedModules.qkv_proj.map((n) => `${p}.${n}`);
  const rows = [H * D, KV * D, KV * D];
  const bias = cfg.attentionBias;
  if (w.tp.size === 1) {
    if (!fused) return names.map((n, j) => new Linear(w.get(`${n}.weight`, [rows[j], h]), bias ? w.get(`${n}.bias`, [rows[j]]) : null));
    return [new Linear(
      w.packed(`${p}.qkv_proj`, names, rows.map((r) => [r, h]), 'weight'),
      bias ? w.packed(`${p}.qkv_proj`, names, rows.map((r) => [r]), 'bias') : null,
    )];
  }
  const l = localHeads(H, KV, w.tp);
  const ranges: [number, number][] = [[l.headStart * D, (l.headStart + l.heads) * D], [l.kvHeadStart * D, (l.kvHeadStart + l.kvHeads) * D]];
  const partRanges = [ranges[0], ranges[1], ranges[1]];
  const localRows = [l.heads * D, l.kvHeads * D, l.kvHeads * D];
  // As at size 1: a fused checkpoint tensor is read only where the layer fuses (q/k norms read the parts).
  const inFused = fused && !w.source.isDummy && w.has(`${p}.qkv_proj.weight`);
  const pieces = (suffix: string, j: number): ShardPiece => {
    const cols = suffix === 'weight' ? [h] : [];
    if (!inFused) return { name: `${names[j]}.${suffix}`, shape: [rows[j], ...cols], dim: 0, start: partRanges[j][0], end: partRanges[j][1] };
    const off = rows.slice(0, j).reduce((a, b) => a + b, 0);
    const total = rows.reduce((a, b) => a + b, 0);
    return { name: `${p}.qkv_proj.${suffix}`, shape: [total, ...cols], dim: 0, start: off + partRanges[j][0], end: off + partRanges[j][1] };
  };
  const load = (js: number[], suffix: string) => {
    const n = js.reduce((a, j) => a + localRows[j], 0);
    return w.shard(js.map((j) => pieces(suffix, j)), suffix === 'weight' ? [n, h] : [n]);
  };
  const groups = fused ? [[0, 1, 2]] : [[0], [1], [2]];
  return groups.map((js) => new Linear(load(js, 'weight'), bias ? load(js, 'bias') : null));
}

/**
 * gate and up of a gated MLP, this rank's slice of the width (MergedColumnParallelLinear):
 * [2 * ffn / size, hidden], this rank's gate rows then its up rows.
 */
export function gateUpLinear(w: WeightLoader, p: string, ffn: number, h: number, bias: boolean): Linear {
  const names = packedModules.gate_up_proj.map((n) => `${p}.${n}`);
  if (w.tp.size === 1) {
    return new Linear(
      w.packed(`${p}.gate_up_proj`, names, [[ffn, h], [ffn, h]], 'weight'),
      bias ? w.packed(`${p}.gate_up_proj`, names, [[ffn], [ffn]], 'bias') : null,
    );
  }
  const [s, e] = evenShard(ffn, w.tp, 'intermediate_size');
  const inFused = !w.source.isDummy && w.has(`${p}.gate_up_proj.weight`);
  const load = (suffix: string) => {
    const cols = suffix === 'weight' ? [h] : [];
    const pieces: ShardPiece[] = [0, 1].map((j) => (inFused
      ? { name: `${p}.gate_up_proj.${suffix}`, shape: [2 * ffn, ...cols], dim: 0, start: j * ffn + s, end: j * ffn + e }
      : { name: `${names[j]}.${suffix}`, shape: [ffn, ...cols], dim: 0, start: s, end: e }));
    return w.shard(pieces, [2 * (e - s), ...cols]);
  };
  return new Linear(load('weight'), bias ? load('bias') : null);
}

/**
 * A row-parallel projection `name` ([outF, inF] on disk): this rank's inF slice,
 * all-reduced unless `reduce` is false (a MoE's shared expert, reduced with the
 * experts once). inSlice: this rank's [start, end) of inF (default an even split).
 */
export function rowLinear(w: WeightLoader, name: string, outF: number, inF: number, bias: boolean,
  opts: { reduce?: boolean; inSlice?: [number, number]; transposed?: boolean } = {}): Linear {
  if (w.tp.size === 1) {
    if (opts.transposed) return new Linear(w.getTransposed(`${name}.weight`, [inF, outF]), bias ? w.get(`${name}.bias`, [outF]) : null);
    return new Linear(w.get(`${name}.weight`, [outF, inF]), bias ? w.get(`${name}.bias`, [outF]) : null);
  }
  const [s, e] = opts.inSlice ?? evenShard(inF, w.tp, `${name} input features`);
  const piece: ShardPiece = opts.transposed
    ? { name: `${name}.weight`, shape: [inF, outF], dim: 0, start: s, end: e, transpose: true }
    : { name: `${name}.weight`, shape: [outF, inF], dim: 1, start: s, end: e };
  const weight = w.shard([piece], [outF, e - s]);
  // vLLM's RowParallelLinear: the bias is added by rank 0 alone.
  const b = bias && w.tp.rank === 0 ? w.get(`${name}.bias`, [outF]) : null;
  return opts.reduce === false ? new Linear(weight, b) : new RowParallelLinear(weight, b, commOf(w.tp));
}

/** A block whose output is a partial sum over ranks (a MoE block: sharded experts plus a sharded shared expert), all-reduced once. */
export class AllReduced<M extends { forward(ctx: ForwardContext, x: Tensor, out?: Tensor): Tensor }> {
  constructor(readonly inner: M, readonly comm: Communicator) {}

  /** x [T, hidden] -> [T, hidden], all-reduced (into `out` when given) */
  forward(ctx: ForwardContext, x: Tensor, out?: Tensor): Tensor {
    const y = this.inner.forward(ctx, x, out);
    this.comm.allReduce(y);
    return y;
  }
}

/**
 * A column-parallel projection stored [inF, outF] (GPT-2's Conv1D, transposed to
 * [out, in] at load), its output cut to this rank's `ranges` of outF (for a fused
 * qkv: its q, k and v heads) and stacked; bias [outF] cut alike.
 */
export function conv1dColumnLinear(w: WeightLoader, name: string, inF: number, outF: number, ranges: [number, number][], bias: boolean): Linear {
  if (w.tp.size === 1) return new Linear(w.getTransposed(`${name}.weight`, [inF, outF]), bias ? w.get(`${name}.bias`, [outF]) : null);
  const rows = ranges.reduce((a, [s, e]) => a + e - s, 0);
  const weight = w.shard(ranges.map(([start, end]) => ({ name: `${name}.weight`, shape: [inF, outF], dim: 1, start, end, transpose: true })), [rows, inF]);
  const b = bias ? w.shard(ranges.map(([start, end]) => ({ name: `${name}.bias`, shape: [outF], dim: 0, start, end })), [rows]) : null;
  return new Linear(weight, b);
}
