// Qwen3ForCausalLM: Llama's blocks plus a per-head RMSNorm of q and k (q_norm,
// k_norm over head_dim) before rope; no q/k/v bias unless attention_bias.
// Architecture only; kernels live behind the layers.
import type { ModelConfig } from '../../config/types.js';
import type { Tensor } from '../../native/index.js';
import type { RowsView } from '../../attention/backends/backend.js';
import type { ForwardContext } from '../forward_context.js';
import { gatedActFor, gatedActivation, type GatedAct } from '../layers/activation.js';
import { Attention } from '../layers/attention.js';
import { VocabEmbedding } from '../layers/embedding.js';
import { RMSNorm } from '../layers/layernorm.js';
import { Linear } from '../layers/linear.js';
import { RotaryEmbedding } from '../layers/rotary_embedding.js';
import type { WeightLoader } from '../weight_loader.js';
import type { CausalLM } from './interface.js';
import { layerSlidingWindows, runLayers } from './utils.js';

/**
 * Only gate/up are fused: q, k and v stay separate projections so that q and k are
 * contiguous [T, heads * headDim], i.e. [T * heads, headDim] rows for their norms.
 */
export const packedModules = {
  gate_up_proj: ['gate_proj', 'up_proj'],
} as const;

class Qwen3DecoderLayer {
  readonly inputLayernorm: RMSNorm;
  readonly postAttentionLayernorm: RMSNorm;
  readonly qProj: Linear; // [H * D, hidden]
  readonly kProj: Linear; // [KV * D, hidden]
  readonly vProj: Linear; // [KV * D, hidden]
  readonly qNorm: RMSNorm; // [D]
  readonly kNorm: RMSNorm; // [D]
  readonly oProj: Linear; // [hidden, H * D]
  readonly gateUpProj: Linear; // [2 * ffn, hidden]
  readonly downProj: Linear; // [hidden, ffn]
  readonly attn: Attention;
  readonly act: GatedAct;

  constructor(cfg: ModelConfig, w: WeightLoader, i: number, readonly rotary: RotaryEmbedding, slidingWindow: number | null) {
    const p = `model.layers.${i}`;
    const { hiddenSize: h, numAttentionHeads: H, numKeyValueHeads: KV, headDim: D, intermediateSize: ffn } = cfg;
    const eps = cfg.rmsNormEps;
    this.inputLayernorm = new RMSNorm(w.get(`${p}.input_layernorm.weight`, [h]), eps);
    this.postAttentionLayernorm = new RMSNorm(w.get(`${p}.post_attention_layernorm.weight`, [h]), eps);
    const proj = (n: string, out: number, inF: number) =>
      new Linear(w.get(`${p}.self_attn.${n}.weight`, [out, inF]), cfg.attentionBias ? w.get(`${p}.self_attn.${n}.bias`, [out]) : null);
    this.qProj = proj('q_proj', H * D, h);
    this.kProj = proj('k_proj', KV * D, h);
    this.vProj = proj('v_proj', KV * D, h);
    this.oProj = proj('o_proj', h, H * D);
    this.qNorm = new RMSNorm(w.get(`${p}.self_attn.q_norm.weight`, [D]), eps);
    this.kNorm = new RMSNorm(w.get(`${p}.self_attn.k_norm.weight`, [D]), eps);
    const guNames = packedModules.gate_up_proj.map((n) => `${p}.mlp.${n}.weight`);
    this.gateUpProj = new Linear(w.concat(guNames, [[ffn, h], [ffn, h]]));
    this.downProj = new Linear(w.get(`${p}.mlp.down_proj.weight`, [h, ffn]));
    this.attn = new Attention(i, H, KV, D, { slidingWindow });
    this.act = gatedActFor(cfg.hiddenAct);
  }

  /**
   * hidden [T, h] (null in the first layer), residual [T, h] (updated in place)
   * -> [T, h] before the residual add
   */
  forward(ctx: ForwardContext, positions: Tensor, hidden: Tensor | null, residual: Tensor, out: Tensor): void {
    const { numHeads: H, numKvHeads: KV, headDim: D } = this.attn.spec;
    let x = hidden ? this.inputLayernorm.forward(ctx, hidden, residual) : this.inputLayernorm.forward(ctx, residual); // [T, h]
    const T = x.shape[0];
    const q = this.qNorm.forward(ctx, this.qProj.forward(ctx, x).reshape([T * H, D])); // [T * H, D]
    const k = this.kNorm.forward(ctx, this.kProj.forward(ctx, x).reshape([T * KV, D])); // [T * KV, D]
    const v = this.vProj.forward(ctx, x); // [T, KV * D]
    const qRows: RowsView = { addr: q.addr, stride: H * D };
    const kRows: RowsView = { addr: k.addr, stride: KV * D };
    this.rotary.forward(ctx, positions, qRows, kRows, H, KV);
    const attnOut = this.attn.forward(ctx, qRows, kRows, { addr: v.addr, stride: KV * D }); // [T, H * D]
    x = this.oProj.forward(ctx, attnOut); // [T, h]
    x = this.postAttentionLayernorm.forward(ctx, x, residual);
    const gateUp = this.gateUpProj.forward(ctx, x); // [T, 2 * ffn]
    this.downProj.forward(ctx, gatedActivation(ctx, this.act, gateUp), out); // [T, h]
  }
}

export class Qwen3ForCausalLM implements CausalLM {
  readonly embedTokens: VocabEmbedding;
  readonly layers: Qwen3DecoderLayer[] = [];
  readonly norm: RMSNorm;
  readonly lmHead: Linear;

  constructor(readonly config: ModelConfig, w: WeightLoader) {
    const { hiddenSize: h, vocabSize: V } = config;
    const embed = w.get('model.embed_tokens.weight', [V, h]);
    this.embedTokens = new VocabEmbedding(embed);
    if (!config.rope) throw new Error(`${config.architectures[0]} needs rotary embedding parameters in config.json`);
    const rotary = new RotaryEmbedding(w.ops, config.rope, config.headDim, config.maxModelLen);
    w.track(rotary.cosSinCache);
    const windows = layerSlidingWindows(config);
    for (let i = 0; i < config.numHiddenLayers; i++) this.layers.push(new Qwen3DecoderLayer(config, w, i, rotary, windows[i]));
    this.norm = new RMSNorm(w.get('model.norm.weight', [h]), config.rmsNormEps);
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
