// GemmaForCausalLM: Llama's blocks with GeGLU (tanh GELU, from hidden_activation),
// RMSNorm scaled by (1 + w), embeddings multiplied by sqrt(hidden), a head_dim of
// its own (not hidden / heads), usually MQA and always tied embeddings.
import type { ModelConfig } from '../../config/types.js';
import { DType, f32ToBf16, bf16ToF32, f32ToF16, f16ToF32 } from '../../native/index.js';
import type { WeightLoader } from '../weight_loader.js';
import { LlamaForCausalLM } from './llama.js';

export class GemmaForCausalLM extends LlamaForCausalLM {
  constructor(config: ModelConfig, w: WeightLoader) {
    if (config.slidingWindow !== null) throw new Error('GemmaForCausalLM has no sliding window: remove sliding_window from config.json (Gemma 2 is Gemma2ForCausalLM)');
    super(config, w, { normWeightOffset: 1, embedScale: embedNormalizer(config.hiddenSize, w.targetDtype) });
  }
}

/**
 * NOTE: HF multiplies by sqrt(hidden) as a tensor of the activations' dtype, so in
 * bf16 the factor itself is rounded (sqrt(3072) = 55.43 becomes 55.5). The CPU
 * computes in f32 (targetDtype null); CUDA's activations are the weights' dtype.
 */
export function embedNormalizer(hidden: number, act: DType | null): number {
  const x = new Float32Array([Math.sqrt(hidden)]);
  if (act === DType.BF16) return bf16ToF32(f32ToBf16(x))[0];
  if (act === DType.F16) return f16ToF32(f32ToF16(x))[0];
  return x[0];
}
