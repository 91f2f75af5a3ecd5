// Vocabulary-parallel embedding and LM head (vLLM's VocabParallelEmbedding and
// ParallelLMHead): rank r holds rows [r * Vr, min(V, (r + 1) * Vr)) of the table,
// Vr = ceil(V / size), zero-padded to Vr rows. The embedding looks up its own ids
// (others give zero rows) and an all-reduce sums the one non-zero row per token;
// the LM head computes this rank's [n, Vr] logits, all-gathers them and lays the
// gathered [size, n, Vr] out as [n, V] (vt_copy_2d), so every rank samples from the
// whole row, identically. At size 1 the builders make the unsharded layers.
import { check, DTYPE_BYTES, type Tensor } from '../../native/index.js';
import { commOf, type Communicator, type TensorParallel } from '../../distributed/communicator.js';
import type { ForwardContext } from '../forward_context.js';
import type { WeightLoader } from '../weight_loader.js';
import { VocabEmbedding } from './embedding.js';
import { Linear } from './linear.js';

/** This rank's rows of a vocabulary of V: [start, end), and the padded rows per rank. */
export function vocabShard(V: number, tp: TensorParallel): { start: number; end: number; perRank: number } {
  const perRank = Math.ceil(V / tp.size);
  const start = Math.min(V, tp.rank * perRank);
  return { start, end: Math.min(V, start + perRank), perRank };
}

export class VocabParallelEmbedding extends VocabEmbedding {
  constructor(
    weight: Tensor, // [perRank, hidden]: rows [start, end) then zero padding
    scale: number,
    readonly vocabStart: number,
    readonly vocabEnd: number,
    readonly comm: Communicator,
  ) {
    super(weight, scale);
  }

  /** ids [T] int32 -> [T, hidden] (all-reduced) */
  override forward(ctx: ForwardContext, ids: Tensor): Tensor {
    const T = ids.shape[0];
    const hidden = this.weight.shape[1];
    const out = ctx.ws.alloc([T, hidden], ctx.act);
    check(ctx.ops, ctx.ops.vocabEmbedding(out.addr, this.weight.addr, ids.addr, T, hidden, this.scale, this.vocabStart, this.vocabEnd,
      this.weight.dtype, ctx.act), 'vocab_embedding');
    this.comm.allReduce(out);
    return out;
  }
}

export class ParallelLMHead extends Linear {
  constructor(
    weight: Tensor, // [perRank, hidden]
    readonly vocabSize: number,
    readonly comm: Communicator,
  ) {
    super(weight);
  }

  /** hidden [n, h] -> logits [n, vocab]: this rank's [n, perRank], gathered over ranks */
  override forward(ctx: ForwardContext, x: Tensor): Tensor {
    const n = x.shape[0];
    const { outFeatures: Vr } = this;
    const V = this.vocabSize;
    const size = this.comm.worldSize;
    const local = super.forward(ctx, x); // [n, Vr]
    const gathered = ctx.ws.alloc([size, n, Vr], ctx.act); // [size, n, Vr]
    this.comm.allGather(local, gathered);
    const logits = ctx.ws.alloc([n, V], ctx.act); // [n, V]
    const es = DTYPE_BYTES[ctx.act];
    for (let r = 0; r < size; r++) {
      const width = Math.max(0, Math.min(Vr, V - r * Vr)); // rank r's real columns (the last may be short)
      if (width === 0) continue;
      check(ctx.ops, ctx.ops.copy2d(logits.addr + r * Vr * es, V * es, gathered.addr + r * n * Vr * es, Vr * es, width * es, n), 'copy_2d');
    }
    return logits;
  }
}

/** This rank's rows of a [V, h] table, zero-padded to perRank rows (the whole table at size 1). */
function vocabWeight(w: WeightLoader, name: string, V: number, h: number): Tensor {
  if (w.tp.size === 1) return w.get(name, [V, h]);
  const { start, end, perRank } = vocabShard(V, w.tp);
  return w.shard([{ name, shape: [V, h], dim: 0, start, end }], [perRank, h]);
}

/** The token embedding `name` [V, h]; its weight too, for a tied LM head. */
export function vocabEmbedding(w: WeightLoader, name: string, V: number, h: number, scale = 1): { embed: VocabEmbedding; weight: Tensor } {
  const weight = vocabWeight(w, name, V, h);
  if (w.tp.size === 1) return { embed: new VocabEmbedding(weight, scale), weight };
  const { start, end } = vocabShard(V, w.tp);
  return { embed: new VocabParallelEmbedding(weight, scale, start, end, commOf(w.tp)), weight };
}

/** The LM head: `tied` (the embedding's weight) or the checkpoint's `name` [V, h]. */
export function lmHead(w: WeightLoader, tied: Tensor | null, name: string, V: number, h: number): Linear {
  const weight = tied ?? vocabWeight(w, name, V, h);
  return w.tp.size === 1 ? new Linear(weight) : new ParallelLMHead(weight, V, commOf(w.tp));
}
