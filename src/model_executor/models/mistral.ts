// MistralForCausalLM: Llama's blocks with sliding-window attention (config.json
// sliding_window; null means full attention): each query attends to the last
// sliding_window positions, itself included.
import type { ModelConfig } from '../../config/types.js';
import type { WeightLoader } from '../weight_loader.js';
import { LlamaForCausalLM } from './llama.js';
import { withUniformSlidingWindow } from './utils.js';

export class MistralForCausalLM extends LlamaForCausalLM {
  constructor(config: ModelConfig, w: WeightLoader) {
    super(withUniformSlidingWindow(config), w);
  }
}
