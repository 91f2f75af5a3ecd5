// Default sampling parameters from a model's generation_config.json (vLLM's
// ModelConfig.get_diff_sampling_param): the engine applies them to every request
// unless generationConfig is 'vllm'; fields the user gives win.
import { SamplingParams, type SamplingParamsInit, type SamplingParamsInput } from './sampling_params.js';

/** generation_config.json key -> SamplingParams field (HF's max_new_tokens is vLLM's max_tokens). */
const GENERATION_CONFIG_FIELDS = [
  ['repetition_penalty', 'repetitionPenalty'],
  ['temperature', 'temperature'],
  ['top_k', 'topK'],
  ['top_p', 'topP'],
  ['min_p', 'minP'],
  ['max_new_tokens', 'maxTokens'],
] as const satisfies readonly (readonly [string, keyof SamplingParamsInit])[];

/**
 * The overrides vLLM takes from generation_config.json: temperature, top_p, top_k,
 * min_p, repetition_penalty and max_new_tokens (as maxTokens), when present and
 * numeric. Other keys (do_sample, eos_token_id, ...) are not sampling defaults.
 */
export function defaultSamplingParamsFromGenerationConfig(
  genConfig: Record<string, unknown> | null | undefined,
): Partial<SamplingParamsInit> {
  const out: Partial<Record<keyof SamplingParamsInit, number>> = {};
  if (!genConfig) return out as Partial<SamplingParamsInit>;
  for (const [hfKey, field] of GENERATION_CONFIG_FIELDS) {
    const value = genConfig[hfKey];
    if (typeof value === 'number' && Number.isFinite(value)) out[field] = value;
  }
  return out as Partial<SamplingParamsInit>;
}

/**
 * The engine's default overrides: {} when generationConfig is 'vllm', otherwise
 * the model's generation_config.json values.
 */
export function defaultSamplingOverrides(
  genConfig: Record<string, unknown> | null | undefined,
  generationConfig: 'auto' | 'vllm' = 'auto',
): Partial<SamplingParamsInit> {
  return generationConfig === 'vllm' ? {} : defaultSamplingParamsFromGenerationConfig(genConfig);
}

/**
 * Validated SamplingParams from the model's defaults and the user's fields; a field
 * the user sets (not undefined) wins over the default.
 */
export function samplingParamsWithDefaults(
  defaults: Partial<SamplingParamsInit>,
  user: SamplingParamsInput = {},
): SamplingParams {
  const merged: SamplingParamsInput = { ...defaults };
  for (const [key, value] of Object.entries(user)) {
    if (value !== undefined) (merged as Record<string, unknown>)[key] = value;
  }
  return SamplingParams.create(merged);
}
