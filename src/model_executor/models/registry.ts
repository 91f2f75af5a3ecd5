// Model registry: config.json's `architectures` -> the class that builds it.
import type { ModelConfig } from '../../config/types.js';
import type { WeightLoader } from '../weight_loader.js';
import type { CausalLM, ModelFactory } from './interface.js';
import { LlamaForCausalLM } from './llama.js';

const MODELS: Record<string, ModelFactory> = {
  LlamaForCausalLM: (c, w) => new LlamaForCausalLM(c, w),
};

/** Adds an architecture (the models of a later file register themselves here). */
export function registerModel(architecture: string, factory: ModelFactory): void {
  MODELS[architecture] = factory;
}

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
