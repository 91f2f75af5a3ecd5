// Olmo2ForCausalLM: RMSNorms on each branch's output (post_attention_layernorm,
// post_feedforward_layernorm) instead of its input, and an RMSNorm of q and k over
// the whole projection (q_norm [heads * head_dim], k_norm [kv_heads * head_dim]) before rope.
import type { ModelConfig } from '../../config/types.js';
import type { WeightLoader } from '../weight_loader.js';
import { DecoderForCausalLM } from './decoder.js';

export class Olmo2ForCausalLM extends DecoderForCausalLM {
  constructor(config: ModelConfig, w: WeightLoader) {
    super(config, w, { norms: 'post', qkNorm: 'proj' });
  }
}
