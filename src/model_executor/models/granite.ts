// GraniteForCausalLM: Llama's layers with four multipliers from config.json:
// embeddings × embedding_multiplier, scores × attention_multiplier (instead of
// head_dim^-0.5), each branch's output × residual_multiplier before the residual add,
// logits / logits_scaling.
import type { ModelConfig } from '../../config/types.js';
import type { WeightLoader } from '../weight_loader.js';
import { DecoderForCausalLM, RotaryTables } from './decoder.js';
import { layerSlidingWindows, optionalNumber } from './utils.js';

export class GraniteForCausalLM extends DecoderForCausalLM {
  constructor(config: ModelConfig, w: WeightLoader) {
    const rotary = new RotaryTables(config, w).get();
    const windows = layerSlidingWindows(config);
    const scale = optionalNumber(config, 'attention_multiplier') ?? 1 / Math.sqrt(config.headDim);
    super(config, w, {
      embedScale: optionalNumber(config, 'embedding_multiplier') ?? 1,
      layerAttention: (i) => ({ slidingWindow: windows[i], rotary, scale }),
      residualMultiplier: optionalNumber(config, 'residual_multiplier') ?? 1,
      logitScale: 1 / (optionalNumber(config, 'logits_scaling') ?? 1),
    });
  }
}
