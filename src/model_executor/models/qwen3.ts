// Qwen3ForCausalLM: the decoder shell with a per-head RMSNorm of q and k (q_norm,
// k_norm over head_dim) before rope; no q/k/v bias unless attention_bias; a window
// per layer from layer_types / max_window_layers.
import type { ModelConfig } from '../../config/types.js';
import type { WeightLoader } from '../weight_loader.js';
import { DecoderForCausalLM } from './decoder.js';

export class Qwen3ForCausalLM extends DecoderForCausalLM {
  constructor(config: ModelConfig, w: WeightLoader) {
    super(config, w, { qkNorm: 'head' });
  }
}
