// Gemma3ForCausalLM (text): Gemma 2's sandwich layers plus a (1 + w) RMSNorm of q and
// k per head, per-layer `layer_types` (default: every sliding_window_pattern-th layer
// global), and a rope of its own per layer type: rope_parameters.{sliding,full}_attention
// (older configs: rope_local_base_freq for sliding layers, rope_theta + rope_scaling,
// e.g. linear, for global ones). Soft caps only when the config sets them (null in the
// public checkpoints).
import { parseLayerTypeRope } from '../../config/model_config.js';
import type { ModelConfig } from '../../config/types.js';
import type { WeightLoader } from '../weight_loader.js';
import { DecoderForCausalLM, RotaryTables } from './decoder.js';
import { embedNormalizer } from './gemma.js';
import { queryPreAttnScale } from './gemma2.js';
import { layerSlidingWindows, optionalNumber, rejectUnsupported, withLayerTypes } from './utils.js';

export class Gemma3ForCausalLM extends DecoderForCausalLM {
  constructor(config: ModelConfig, w: WeightLoader) {
    // EmbeddingGemma's bidirectional attention is another model.
    rejectUnsupported(config, { use_bidirectional_attention: [false] });
    const hf = config.hfConfig;
    const pattern = optionalNumber(config, 'sliding_window_pattern') ?? (typeof hf._sliding_window_pattern === 'number' ? hf._sliding_window_pattern : 6);
    const cfg = withLayerTypes(config, (i) => ((i + 1) % pattern !== 0 ? 'sliding_attention' : 'full_attention'));
    const windows = layerSlidingWindows(cfg);
    const tables = new RotaryTables(cfg, w);
    const path = `${cfg.model}/config.json`;
    const rotary = {
      sliding_attention: tables.get(parseLayerTypeRope(cfg.hfConfig, path, 'sliding_attention')),
      full_attention: tables.get(parseLayerTypeRope(cfg.hfConfig, path, 'full_attention')),
    };
    const types = cfg.hfConfig.layer_types as ('sliding_attention' | 'full_attention')[];
    const scale = queryPreAttnScale(cfg);
    const softCap = optionalNumber(cfg, 'attn_logit_softcapping');
    super(cfg, w, {
      normWeightOffset: 1,
      embedScale: embedNormalizer(cfg.hiddenSize, w.targetDtype),
      norms: 'sandwich',
      qkNorm: 'head',
      layerAttention: (i) => ({ slidingWindow: windows[i], rotary: rotary[types[i]], scale, softCap }),
      finalLogitSoftCap: optionalNumber(cfg, 'final_logit_softcapping'),
    });
  }
}
