// Gemma2ForCausalLM: Gemma's (1 + w) RMSNorms, GeGLU and sqrt(hidden) embeddings in
// the sandwich layout (norms before and after attention and MLP), sliding-window and
// global layers alternating (layer_types; default: even layers slide), scores scaled
// by query_pre_attn_scalar^-0.5 and soft-capped inside the attention kernel
// (attn_logit_softcapping), final logits soft-capped (final_logit_softcapping).
import type { ModelConfig } from '../../config/types.js';
import type { WeightLoader } from '../weight_loader.js';
import { DecoderForCausalLM, RotaryTables } from './decoder.js';
import { embedNormalizer } from './gemma.js';
import { layerSlidingWindows, optionalNumber, withLayerTypes } from './utils.js';

/** HF Gemma 2/3: scores scale by query_pre_attn_scalar^-0.5 (not head_dim's). */
export function queryPreAttnScale(config: ModelConfig): number {
  const s = optionalNumber(config, 'query_pre_attn_scalar') ?? config.headDim;
  return 1 / Math.sqrt(s);
}

export class Gemma2ForCausalLM extends DecoderForCausalLM {
  constructor(config: ModelConfig, w: WeightLoader) {
    const cfg = withLayerTypes(config, (i) => ((i + 1) % 2 !== 0 ? 'sliding_attention' : 'full_attention'));
    const windows = layerSlidingWindows(cfg);
    const rotary = new RotaryTables(cfg, w).get();
    const scale = queryPreAttnScale(cfg);
    const softCap = optionalNumber(cfg, 'attn_logit_softcapping');
    super(cfg, w, {
      normWeightOffset: 1,
      embedScale: embedNormalizer(cfg.hiddenSize, w.targetDtype),
      norms: 'sandwich',
      layerAttention: (i) => ({ slidingWindow: windows[i], rotary, scale, softCap }),
      finalLogitSoftCap: optionalNumber(cfg, 'final_logit_softcapping'),
    });
  }
}
