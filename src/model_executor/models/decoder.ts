// The decoder shell every rotary-embedding family shares (Llama, Qwen2/3, Mistral,
// Gemma 1/2/3, Phi-3, OLMo 2, Granite, SmolLM3): token embedding, N decoder layers
// of attention + gated MLP, a final RMSNorm and the LM head. Where the families
// differ is a DecoderParts record (norm placement, q/k norms, per-layer attention,
// multipliers); a model file fills it in. Architecture only; kernels live behind the layers.
import type { ModelConfig, RopeConfig } from '../../config/types.js';
import { check, DTYPE_BYTES, type Tensor } from '../../native/index.js';
import { splitQkv, type RopeSpec, type RowsView } from '../../attention/backends/backend.js';
import type { ForwardContext } from '../forward_context.js';
import { gatedActFor, gatedActivation, type GatedAct } from '../layers/activation.js';
import { Attention } from '../layers/attention.js';
import type { VocabEmbedding } from '../layers/embedding.js';
import { RMSNorm } from '../layers/layernorm.js';
import type { Linear } from '../layers/linear.js';
import { gateUpLinear, localHeads, qkvLinears, rowLinear } from '../layers/parallel_linear.js';
import { GatheredRMSNorm } from '../layers/parallel_norm.js';
import { lmHead, vocabEmbedding } from '../layers/vocab_parallel_embedding.js';
import { commOf } from '../../distributed/communicator.js';
import { RotaryEmbedding } from '../layers/rotary_embedding.js';
import type { WeightLoader } from '../weight_loader.js';
import type { CausalLM } from './interface.js';
import { layerSlidingWindows, runLayers } from './utils.js';

/**
 * Where a layer's RMSNorms sit.
 * pre:      input_layernorm before attention, post_attention_layernorm before the MLP (Llama)
 * sandwich: pre adds post_attention_layernorm after attention and pre/post_feedforward_layernorm
 *           around the MLP (Gemma 2/3)
 * post:     post_attention_layernorm / post_feedforward_layernorm on each branch's output,
 *           none on its input (OLMo 2)
 */
export type NormPlacement = 'pre' | 'sandwich' | 'post';

/** One layer's attention: its window, rotary embedding (null: none) and score scale / soft cap. */
export interface LayerAttention {
  slidingWindow: number | null;
  rotary: RotaryEmbedding | null;
  scale?: number;
  softCap?: number | null;
}

/** What a family changes in the shell; everything left out is Llama's. */
export interface DecoderParts {
  /** RMSNorm scales by (1 + w) (Gemma). */
  normWeightOffset?: number;
  /** Embeddings multiplied by this (Gemma: sqrt(hidden), Granite: embedding_multiplier). */
  embedScale?: number;
  norms?: NormPlacement;
  /** q/k RMSNorm before rope: over each head (Qwen3, Gemma 3) or the whole projection (OLMo 2). */
  qkNorm?: 'head' | 'proj' | null;
  /** Each layer's attention; default: the config's windows and one rotary table. */
  layerAttention?: (layer: number) => LayerAttention;
  /** Attention and MLP outputs scaled before the residual add (Granite's residual_multiplier). */
  residualMultiplier?: number;
  /** Logits multiplied by this (Granite: 1 / logits_scaling). */
  logitScale?: number;
  /** cap * tanh(logits / cap) (Gemma 2's final_logit_softcapping). */
  finalLogitSoftCap?: number | null;
  /** Layer i's MLP (prefix `model.layers.${i}`); default the gated MLP at `${prefix}.mlp` (MoE families: a sparse block). */
  mlp?: (i: number, prefix: string) => MLPBlock;
}

/** What a layer's MLP part does: x [T, hidden] -> [T, hidden] (into `out` when given). */
export interface MLPBlock {
  forward(ctx: ForwardContext, x: Tensor, out?: Tensor): Tensor;
}

/** Scales x in place, then caps it: x <- cap > 0 ? cap * tanh(x * scale / cap) : x * scale. */
function scaleSoftCap(ctx: ForwardContext, x: Tensor, scale: number, cap: number): void {
  if (scale === 1 && cap <= 0) return;
  check(ctx.ops, ctx.ops.scaleSoftcap(x.addr, x.addr, x.numel, scale, cap, ctx.act), 'scale_softcap');
}

/** One rotary table per distinct rope config, shared by the layers that use it. */
export class RotaryTables {
  private readonly tables = new Map<string, RotaryEmbedding>();
  constructor(private readonly config: ModelConfig, private readonly w: WeightLoader) {}

  get(rope: RopeConfig | null = this.config.rope): RotaryEmbedding {
    if (!rope) throw new Error(`${this.config.architectures[0]} needs rotary embedding parameters in config.json`);
    const key = JSON.stringify(rope);
    let r = this.tables.get(key);
    if (!r) {
      r = new RotaryEmbedding(this.w.ops, rope, this.config.headDim, this.config.maxModelLen);
      this.w.track(r.cosSinCache);
      this.tables.set(key, r);
    }
    return r;
  }
}

/**
 * OLMo 2's q_norm / k_norm over the whole projection ([H * D], [KV * D]); under
 * tensor parallelism each gathers the heads of every rank first (GatheredRMSNorm).
 */
function projNorms(w: WeightLoader, p: string, cfg: ModelConfig, eps: number, off: number): [RMSNorm, RMSNorm] {
  const { numAttentionHeads: H, numKeyValueHeads: KV, headDim: D } = cfg;
  const qw = w.get(`${p}.q_norm.weight`, [H * D]);
  const kw = w.get(`${p}.k_norm.weight`, [KV * D]);
  if (w.tp.size === 1) return [new RMSNorm(qw, eps, off), new RMSNorm(kw, eps, off)];
  if (KV % w.tp.size !== 0) {
    // Replicated KV heads would gather duplicates: the norm's row would not be the projection's.
    throw new Error(`${cfg.architectures[0]}'s k_norm spans all ${KV} key/value heads: tensor parallel size (${w.tp.size}) must divide them.`);
  }
  const comm = commOf(w.tp);
  return [new GatheredRMSNorm(qw, eps, off, comm), new GatheredRMSNorm(kw, eps, off, comm)];
}

class DecoderAttention {
  /** Fused [(H + 2 KV) * D, hidden] (per-head q/k norms run on its rows), or null when q/k/v stay apart for whole-projection norms. */
  readonly qkvProj: Linear | null = null;
  readonly qProj: Linear | null = null; // [H * D, hidden]
  readonly kProj: Linear | null = null; // [KV * D, hidden]
  readonly vProj: Linear | null = null; // [KV * D, hidden]
  readonly qNorm: RMSNorm | null = null; // [D] per head, or [H * D] over the projection
  readonly kNorm: RMSNorm | null = null; // [D] or [KV * D]
  readonly oProj: Linear; // [hidden, H * D]
  readonly attn: Attention;
  /** The rotation the backend runs with the cache write (the per-head q/k norms in it on fused rows); null: no rope. */
  readonly rope: RopeSpec | null;

  constructor(cfg: ModelConfig, w: WeightLoader, p: string, i: number, parts: DecoderParts, la: LayerAttention) {
    const { hiddenSize: h, numAttentionHeads: H, numKeyValueHeads: KV, headDim: D } = cfg;
    // This rank's heads (all of them at tensor-parallel size 1).
    const local = localHeads(H, KV, w.tp);
    // One qkv GEMM unless q and k need norms that vt_qk_norm_rope_and_cache does not run on its
    // rows (a norm over the whole projection, or per-head norms without rope).
    // NOTE: a norm over the whole projection needs q and k contiguous [T, heads * D], so no fusing.
    const fused = !parts.qkNorm || (parts.qkNorm === 'head' && la.rotary !== null);
    // NOTE: tensors load in this order (--load-format dummy draws each from the next seed).
    if (!fused) [this.qProj, this.kProj, this.vProj] = qkvLinears(w, cfg, p, false);
    const eps = cfg.rmsNormEps;
    const off = parts.normWeightOffset ?? 0;
    if (parts.qkNorm === 'head') {
      this.qNorm = new RMSNorm(w.get(`${p}.q_norm.weight`, [D]), eps, off);
      this.kNorm = new RMSNorm(w.get(`${p}.k_norm.weight`, [D]), eps, off);
    } else if (parts.qkNorm) {
      [this.qNorm, this.kNorm] = projNorms(w, p, cfg, eps, off);
    }
    if (fused) this.qkvProj = qkvLinears(w, cfg, p, true)[0];
    // HF Llama: attention_bias also gives o_proj a bias (Qwen2's q/k/v-only bias does not).
    this.oProj = rowLinear(w, `${p}.o_proj`, h, H * D, cfg.hfConfig.attention_bias === true);
    this.attn = new Attention(i, local.heads, local.kvHeads, D, { scale: la.scale, slidingWindow: la.slidingWindow, softCap: la.softCap });
    const r = la.rotary, qn = fused ? this.qNorm : null;
    const qkNorm = qn ? { qWeight: qn.weight, kWeight: this.kNorm!.weight, eps: qn.eps, weightOffset: qn.weightOffset } : null;
    this.rope = r ? { cosSinCache: r.cosSinCache, rotaryDim: r.rotaryDim, isNeox: r.isNeox, qkNorm } : null;
  }

  /** positions [T], x [T, hidden] -> [T, hidden] (after o_proj) */
  forward(ctx: ForwardContext, positions: Tensor, x: Tensor): Tensor {
    const { numHeads: H, numKvHeads: KV, headDim: D } = this.attn.spec;
    // q, k, v: views into the fused qkv rows [T, (H + 2 KV) * D], or three apart.
    const { q, k, v } = this.qkvProj ? splitQkv(this.qkvProj.forward(ctx, x), H, KV, D, DTYPE_BYTES[ctx.act]) : this.projectApart(ctx, x);
    // Rope (and the per-head norms of fused rows) runs in the backend's cache write: one launch.
    const o = this.rope ? this.attn.forwardRope(ctx, this.rope, positions, q, k, v) : this.attn.forward(ctx, q, k, v);
    return this.oProj.forward(ctx, o); // [T, hidden]
  }

  /** The rare layout: q, k, v from three GEMMs, q and k normed (over the projection, or per head with no rope after). */
  private projectApart(ctx: ForwardContext, x: Tensor): { q: RowsView; k: RowsView; v: RowsView } {
    const { numHeads: H, numKvHeads: KV, headDim: D } = this.attn.spec;
    const T = x.shape[0];
    const perHead = this.qNorm!.weight.shape[0] === D;
    const norm = (n: RMSNorm, y: Tensor, heads: number) => (perHead ? n.forward(ctx, y.reshape([T * heads, D])) : n.forward(ctx, y));
    const qn = norm(this.qNorm!, this.qProj!.forward(ctx, x), H); // [T * H, D] or [T, H * D]
    const kn = norm(this.kNorm!, this.kProj!.forward(ctx, x), KV); // [T * KV, D] or [T, KV * D]
    const vt = this.vProj!.forward(ctx, x); // [T, KV * D]
    return { q: { addr: qn.addr, stride: H * D }, k: { addr: kn.addr, stride: KV * D }, v: { addr: vt.addr, stride: KV * D } };
  }
}

export class GatedMLP implements MLPBlock {
  readonly gateUpProj: Linear; // [2 * ffn, hidden]
  readonly downProj: Linear; // [hidden, ffn]
  readonly act: GatedAct;

  /**
   * ffn: the MLP's width (default intermediate_size; a MoE's shared expert has its own).
   * reduce false: under tensor parallelism the output stays a partial sum (a MoE's
   * shared expert, all-reduced with the experts).
   */
  constructor(cfg: ModelConfig, w: WeightLoader, p: string, ffn = cfg.intermediateSize, reduce = true) {
    const h = cfg.hiddenSize;
    const bias = cfg.hfConfig.mlp_bias === true;
    this.gateUpProj = gateUpLinear(w, p, ffn, h, bias);
    this.downProj = rowLinear(w, `${p}.down_proj`, h, ffn, bias, { reduce });
    this.act = gatedActFor(cfg.hiddenAct);
  }

  /** x [T, hidden] -> [T, hidden] (into `out` when given) */
  forward(ctx: ForwardContext, x: Tensor, out?: Tensor): Tensor {
    return this.downProj.forward(ctx, gatedActivation(ctx, this.act, this.gateUpProj.forward(ctx, x)), out);
  }
}

export class DecoderLayer {
  readonly inputLayernorm: RMSNorm | null;
  readonly postAttentionLayernorm: RMSNorm;
  readonly preFeedforwardLayernorm: RMSNorm | null;
  readonly postFeedforwardLayernorm: RMSNorm | null;
  readonly selfAttn: DecoderAttention;
  readonly mlp: MLPBlock;
  readonly norms: NormPlacement;
  readonly residualMultiplier: number;

  constructor(cfg: ModelConfig, w: WeightLoader, i: number, parts: DecoderParts, la: LayerAttention) {
    const p = `model.layers.${i}`;
    const h = cfg.hiddenSize;
    const norm = (n: string) => new RMSNorm(w.get(`${p}.${n}.weight`, [h]), cfg.rmsNormEps, parts.normWeightOffset ?? 0);
    this.norms = parts.norms ?? 'pre';
    this.inputLayernorm = this.norms === 'post' ? null : norm('input_layernorm');
    this.postAttentionLayernorm = norm('post_attention_layernorm');
    this.preFeedforwardLayernorm = this.norms === 'sandwich' ? norm('pre_feedforward_layernorm') : null;
    this.postFeedforwardLayernorm = this.norms === 'pre' ? null : norm('post_feedforward_layernorm');
    this.selfAttn = new DecoderAttention(cfg, w, `${p}.self_attn`, i, parts, la);
    this.mlp = parts.mlp ? parts.mlp(i, p) : new GatedMLP(cfg, w, `${p}.mlp`);
    this.residualMultiplier = parts.residualMultiplier ?? 1;
  }

  /**
   * positions [T]; hidden [T, h] (the previous layer's output, null in the first
   * layer), residual [T, h] (updated in place) -> out [T, h], before the residual add
   */
  forward(ctx: ForwardContext, positions: Tensor, hidden: Tensor | null, residual: Tensor, out: Tensor): void {
    const m = this.residualMultiplier;
    let x: Tensor; // [T, h]
    if (this.inputLayernorm) {
      x = hidden ? this.inputLayernorm.forward(ctx, hidden, residual) : this.inputLayernorm.forward(ctx, residual);
    } else {
      if (hidden) check(ctx.ops, ctx.ops.add(residual.addr, residual.addr, hidden.addr, residual.numel, ctx.act), 'add');
      x = residual;
    }
    const a = this.selfAttn.forward(ctx, positions, x); // [T, h]
    scaleSoftCap(ctx, a, m, 0);
    if (this.norms === 'pre') {
      this.mlp.forward(ctx, this.postAttentionLayernorm.forward(ctx, a, residual), out);
      scaleSoftCap(ctx, out, m, 0);
      return;
    }
    const an = this.postAttentionLayernorm.forward(ctx, a); // [T, h]
    let y: Tensor; // the MLP's input [T, h]
    if (this.preFeedforwardLayernorm) {
      y = this.preFeedforwardLayernorm.forward(ctx, an, residual);
    } else {
      check(ctx.ops, ctx.ops.add(residual.addr, residual.addr, an.addr, residual.numel, ctx.act), 'add');
      y = residual;
    }
    const f = this.mlp.forward(ctx, y); // [T, h]
    this.postFeedforwardLayernorm!.forward(ctx, f, null, out);
  }
}

/** The shell's ForCausalLM: embed -> layers -> norm; logits through the (tied) LM head. */
export class DecoderForCausalLM implements CausalLM {
  readonly embedTokens: VocabEmbedding;
  readonly layers: DecoderLayer[] = [];
  readonly norm: RMSNorm;
  readonly lmHead: Linear;
  readonly logitScale: number;
  readonly finalLogitSoftCap: number;

  constructor(readonly config: ModelConfig, w: WeightLoader, parts: DecoderParts = {}) {
    const { hiddenSize: h, vocabSize: V } = config;
    const { embed: embedTokens, weight: embed } = vocabEmbedding(w, 'model.embed_tokens.weight', V, h, parts.embedScale ?? 1);
    this.embedTokens = embedTokens;
    let layerAttention = parts.layerAttention;
    if (!layerAttention) {
      const rotary = new RotaryTables(config, w).get();
      const windows = layerSlidingWindows(config);
      layerAttention = (i) => ({ slidingWindow: windows[i], rotary });
    }
    for (let i = 0; i < config.numHiddenLayers; i++) this.layers.push(new DecoderLayer(config, w, i, parts, layerAttention(i)));
    this.norm = new RMSNorm(w.get('model.norm.weight', [h]), config.rmsNormEps, parts.normWeightOffset ?? 0);
    this.lmHead = lmHead(w, config.tieWordEmbeddings ? embed : null, 'lm_head.weight', V, h);
    this.logitScale = parts.logitScale ?? 1;
    this.finalLogitSoftCap = parts.finalLogitSoftCap ?? 0;
  }

  forward(ctx: ForwardContext, inputIds: Tensor, positions: Tensor): Tensor {
    const residual = this.embedTokens.forward(ctx, inputIds); // [T, h]
    const out = ctx.ws.alloc(residual.shape, ctx.act); // [T, h]
    const hidden = runLayers(ctx, this.layers, out, (layer, h, o) => layer.forward(ctx, positions, h, residual, o));
    return hidden ? this.norm.forward(ctx, hidden, residual) : this.norm.forward(ctx, residual); // [T, h]
  }

  attentionWindows(): (number | null)[] {
    return this.layers.map((l) => l.selfAttn.attn.spec.slidingWindow || null);
  }

  computeLogits(ctx: ForwardContext, hidden: Tensor): Tensor {
    const logits = this.lmHead.forward(ctx, hidden); // [n, vocab]
    scaleSoftCap(ctx, logits, this.logitScale, this.finalLogitSoftCap);
    return logits;
  }
}
