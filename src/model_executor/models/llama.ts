// LlamaForCausalLM (and the families that share its blocks: Qwen2 adds q/k/v bias,
// Mistral a sliding window). Architecture only; kernels live behind the layers.
import type { ModelConfig } from '../../config/types.js';
import { DTYPE_BYTES, Tensor } from '../../native/index.js';
import { splitQkv } from '../../attention/backends/backend.js';
import type { ForwardContext } from '../forward_context.js';
import { gatedActFor, gatedActivation, type GatedAct } from '../layers/activation.js';
import { Attention } from '../layers/attention.js';
import { VocabEmbedding } from '../layers/embedding.js';
import { RMSNorm } from '../layers/layernorm.js';
import { Linear } from '../layers/linear.js';
import { RotaryEmbedding } from '../layers/rotary_embedding.js';
import type { WeightLoader } from '../weight_loader.js';
import type { CausalLM } from './interface.js';
import { runLayers } from './utils.js';

/** Checkpoint tensors fused into one weight: fused name -> the parts, in row order. */
export const packedModules = {
  qkv_proj: ['q_proj', 'k_proj', 'v_proj'],
  gate_up_proj: ['gate_proj', 'up_proj'],
} as const;

/** Options that let close relatives reuse this file. */
export interface LlamaVariant {
  /** RMSNorm scales by (1 + w) (Gemma). */
  normWeightOffset?: number;
  /** Embeddings multiplied by sqrt(hidden) (Gemma). */
  embedScale?: number;
}

class LlamaDecoderLayer {
  readonly inputLayernorm: RMSNorm;
  readonly postAttentionLayernorm: RMSNorm;
  readonly qkvProj: Linear; // [(H + 2 KV) * D, hidden]
  readonly oProj: Linear; // [hidden, H * D]
  readonly gateUpProj: Linear; // [2 * ffn, hidden]
  readonly downProj: Linear; // [hidden, ffn]
  readonly attn: Attention;
  readonly act: GatedAct;

  constructor(cfg: ModelConfig, w: WeightLoader, i: number, readonly rotary: RotaryEmbedding, variant: LlamaVariant) {
    const p = `model.layers.${i}`;
    const { hiddenSize: h, numAttentionHeads: H, numKeyValueHeads: KV, headDim: D, intermediateSize: ffn } = cfg;
    const offset = variant.normWeightOffset ?? 0;
    this.inputLayernorm = new RMSNorm(w.get(`${p}.input_layernorm.weight`, [h]), cfg.rmsNormEps, offset);
    this.postAttentionLayernorm = new RMSNorm(w.get(`${p}.post_attention_layernorm.weight`, [h]), cfg.rmsNormEps, offset);
    const qkvShapes = [[H * D, h], [KV * D, h], [KV * D, h]];
    const qkvNames = packedModules.qkv_proj.map((n) => `${p}.self_attn.${n}`);
    this.qkvProj = new Linear(
      w.concat(qkvNames.map((n) => `${n}.weight`), qkvShapes),
      cfg.attentionBias ? w.concat(qkvNames.map((n) => `${n}.bias`), qkvShapes.map((s) => [s[0]])) : null,
    );
    // HF Llama: attention_bias also gives o_proj a bias, mlp_bias the MLP (Qwen2's q/k/v-only bias does not).
    const oBias = cfg.hfConfig.attention_bias === true;
    const mlpBias = cfg.hfConfig.mlp_bias === true;
    this.oProj = new Linear(w.get(`${p}.self_attn.o_proj.weight`, [h, H * D]), oBias ? w.get(`${p}.self_attn.o_proj.bias`, [h]) : null);
    const guNames = packedModules.gate_up_proj.map((n) => `${p}.mlp.${n}.weight`);
    const guBias = packedModules.gate_up_proj.map((n) => `${p}.mlp.${n}.bias`);
    this.gateUpProj = new Linear(w.concat(guNames, [[ffn, h], [ffn, h]]), mlpBias ? w.concat(guBias, [[ffn], [ffn]]) : null);
    this.downProj = new Linear(w.get(`${p}.mlp.down_proj.weight`, [h, ffn]), mlpBias ? w.get(`${p}.mlp.down_proj.bias`, [h]) : null);
    this.attn = new Attention(i, H, KV, D, { slidingWindow: cfg.slidingWindow });
    this.act = gatedActFor(cfg.hiddenAct);
  }

  /** hidden [T, h] (null in the first layer), residual [T, h] (updated in place) -> out [T, h], before the residual add */
  forward(ctx: ForwardContext, positions: Tensor, hidden: Tensor | null, residual: Tensor, out: Tensor): void {
    const { numHeads, numKvHeads, headDim } = this.attn.spec;
    let x = hidden ? this.inputLayernorm.forward(ctx, hidden, residual) : this.inputLayernorm.forward(ctx, residual); // [T, h]
    const qkv = this.qkvProj.forward(ctx, x); // [T, (H + 2 KV) * D]
    const { q, k, v } = splitQkv(qkv, numHeads, numKvHeads, headDim, DTYPE_BYTES[ctx.act]);
    this.rotary.forward(ctx, positions, q, k, numHeads, numKvHeads);
    const attnOut = this.attn.forward(ctx, q, k, v); // [T, H * D]
    x = this.oProj.forward(ctx, attnOut); // [T, h]
    x = this.postAttentionLayernorm.forward(ctx, x, residual);
    const gateUp = this.gateUpProj.forward(ctx, x); // [T, 2 * ffn]
    this.downProj.forward(ctx, gatedActivation(ctx, this.act, gateUp), out); // [T, h]
  }
}

export class LlamaForCausalLM implements CausalLM {
  readonly embedTokens: VocabEmbedding;
  readonly layers: LlamaDecoderLayer[] = [];
  readonly norm: RMSNorm;
  readonly lmHead: Linear;

  constructor(readonly config: ModelConfig, w: WeightLoader, variant: LlamaVariant = {}) {
    const { hiddenSize: h, vocabSize: V } = config;
    const embed = w.get('model.embed_tokens.weight', [V, h]);
    this.embedTokens = new VocabEmbedding(embed, variant.embedScale ?? 1);
    if (!config.rope) throw new Error(`${config.architectures[0]} needs rotary embedding parameters in config.json`);
    const rotary = new RotaryEmbedding(w.ops, config.rope, config.headDim, config.maxModelLen);
    w.track(rotary.cosSinCache);
    for (let i = 0; i < config.numHiddenLayers; i++) this.layers.push(new LlamaDecoderLayer(config, w, i, rotary, variant));
    this.norm = new RMSNorm(w.get('model.norm.weight', [h]), config.rmsNormEps, variant.normWeightOffset ?? 0);
    this.lmHead = new Linear(config.tieWordEmbeddings ? embed : w.get('lm_head.weight', [V, h]));
  }

  forward(ctx: ForwardContext, inputIds: Tensor, positions: Tensor): Tensor {
    const residual = this.embedTokens.forward(ctx, inputIds); // [T, h]
    const out = ctx.ws.alloc(residual.shape, ctx.act); // [T, h]
    const hidden = runLayers(ctx, this.layers, out, (layer, h, o) => layer.forward(ctx, positions, h, residual, o));
    return hidden ? this.norm.forward(ctx, hidden, residual) : this.norm.forward(ctx, residual); // [T, h]
  }

  computeLogits(ctx: ForwardContext, hidden: Tensor): Tensor {
    return this.lmHead.forward(ctx, hidden); // [n, vocab]
  }
}
