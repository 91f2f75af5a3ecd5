// Model registry: config.json's `architectures` -> the class that builds it.
import type { ModelConfig } from '../../config/types.js';
import type { WeightLoader } from '../weight_loader.js';
import type { CausalLM, ModelFactory } from './interface.js';
import { GemmaForCausalLM } from './gemma.js';
import { Gemma2ForCausalLM } from './gemma2.js';
import { Gemma3ForCausalLM } from './gemma3.js';
import { GraniteForCausalLM } from './granite.js';
import { Olmo2ForCausalLM } from './olmo2.js';
import { Phi3ForCausalLM } from './phi3.js';
import { SmolLM3ForCausalLM } from './smollm3.js';
import { GPT2LMHeadModel } from './gpt2.js';
import { LlamaForCausalLM } from './llama.js';
import { MistralForCausalLM } from './mistral.js';
import { Qwen2ForCausalLM } from './qwen2.js';
import { Qwen3ForCausalLM } from './qwen3.js';
import { Qwen3MoeForCausalLM } from './qwen3_moe.js';
import { Qwen2MoeForCausalLM } from './qwen2_moe.js';
import { MixtralForCausalLM } from './mixtral.js';

const MODELS: Record<string, ModelFactory> = {
  LlamaForCausalLM: (c, w) => new LlamaForCausalLM(c, w),
  Qwen2ForCausalLM: (c, w) => new Qwen2ForCausalLM(c, w),
  GemmaForCausalLM: (c, w) => new GemmaForCausalLM(c, w),
  GPT2LMHeadModel: (c, w) => new GPT2LMHeadModel(c, w),
  MistralForCausalLM: (c, w) => new MistralForCausalLM(c, w),
  Qwen3ForCausalLM: (c, w) => new Qwen3ForCausalLM(c, w),
  Qwen3MoeForCausalLM: (c, w) => new Qwen3MoeForCausalLM(c, w),
  Qwen2MoeForCausalLM: (c, w) => new Qwen2MoeForCausalLM(c, w),
  MixtralForCausalLM: (c, w) => new MixtralForCausalLM(c, w),
  Gemma2ForCausalLM: (c, w) => new Gemma2ForCausalLM(c, w),
  Gemma3ForCausalLM: (c, w) => new Gemma3ForCausalLM(c, w),
  Phi3ForCausalLM: (c, w) => new Phi3ForCausalLM(c, w),
  Olmo2ForCausalLM: (c, w) => new Olmo2ForCausalLM(c, w),
  GraniteForCausalLM: (c, w) => new GraniteForCausalLM(c, w),
  SmolLM3ForCausalLM: (c, w) => new SmolLM3ForCausalLM(c, w),
};

export function supportedArchitectures(): string[] {
  return Object.keys(MODELS).sort();
}

export function resolveModel(config: ModelConfig): ModelFactory {
  for (const arch of config.architectures) {
    const f = MODELS[arch];
    if (f) return f;
  }
  throw new Error(
    `model architecture(s) ${JSON.stringify(config.architectures)} of ${config.model} are not supported; ` +
      `supported architectures: ${supportedArchitectures().join(', ')}`,
  );
}

export function buildModel(config: ModelConfig, loader: WeightLoader): CausalLM {
  return resolveModel(config)(config, loader);
}
