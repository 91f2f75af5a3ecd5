// Qwen2ForCausalLM: Llama's blocks with q/k/v biases (ModelConfig.attentionBias is
// true for model_type qwen2), usually tied embeddings, and an optional sliding
// window on the upper layers (use_sliding_window + max_window_layers / layer_types).
import type { ModelConfig } from '../../config/types.js';
import type { WeightLoader } from '../weight_loader.js';
import { LlamaForCausalLM } from './llama.js';
import { withUniformSlidingWindow } from './utils.js';

export class Qwen2ForCausalLM extends LlamaForCausalLM {
  constructor(config: ModelConfig, w: WeightLoader) {
    super(withUniformSlidingWindow(config), w);
  }
}
