// LlamaForCausalLM: the decoder shell (./decoder.ts) with nothing changed; Qwen2
// (q/k/v bias), Mistral (a sliding window) and Gemma build on it.
import type { ModelConfig } from '../../config/types.js';
import type { WeightLoader } from '../weight_loader.js';
import { DecoderForCausalLM, type DecoderParts } from './decoder.js';

export class LlamaForCausalLM extends DecoderForCausalLM {
  constructor(config: ModelConfig, w: WeightLoader, parts: DecoderParts = {}) {
    super(config, w, parts);
  }
}
