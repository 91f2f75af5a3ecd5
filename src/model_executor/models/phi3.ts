// Phi3ForCausalLM (Phi-3, Phi-3.5, Phi-4-mini): Llama's layers with the checkpoint's
// fused qkv_proj and gate_up_proj read as they are (WeightLoader.packed), rope with
// longrope ("su") short/long factors and partial_rotary_factor (Phi-4-mini: 0.75),
// and a sliding window on every layer when sliding_window is set (Phi-3-mini).
import type { ModelConfig } from '../../config/types.js';
import type { WeightLoader } from '../weight_loader.js';
import { DecoderForCausalLM } from './decoder.js';
import { rejectUnsupported } from './utils.js';

export class Phi3ForCausalLM extends DecoderForCausalLM {
  constructor(config: ModelConfig, w: WeightLoader) {
    // The LM head has no bias in any public Phi-3/4 checkpoint; one that had would need it.
    rejectUnsupported(config, { lm_head_bias: [false] });
    super(config, w);
  }
}
