// GET /v1/models (vLLM's OpenAIServingModels).
import { randomId } from './serving_engine.js';
import type { DefaultSamplingParams, ModelCard } from './protocol.js';
import { SamplingParams, type SamplingParamsInit } from '../../sampling_params.js';

/**
 * The sampling parameters a request gets for the fields it leaves out: vLLM's
 * defaults under the model's generation_config.json overrides (none with
 * --generation-config vllm). max_tokens null: up to the context length. Shown on
 * every model card as `default_sampling_params` (vLLM has no field for this; the
 * playground reads its controls' defaults from it).
 */
export function defaultSamplingParams(overrides: Partial<SamplingParamsInit>): DefaultSamplingParams {
  const maxTokens = overrides.maxTokens ?? null;
  const p = SamplingParams.create({ ...overrides, maxTokens });
  return {
    temperature: p.temperature,
    top_p: p.topP,
    top_k: p.topK,
    min_p: p.minP,
    presence_penalty: p.presencePenalty,
    frequency_penalty: p.frequencyPenalty,
    repetition_penalty: p.repetitionPenalty,
    max_tokens: maxTokens,
  };
}

export function listModels(servedModelNames: string[], root: string, maxModelLen: number, defaults: DefaultSamplingParams) {
  const created = Math.floor(Date.now() / 1000);
  const data: ModelCard[] = servedModelNames.map((id) => ({
    id,
    object: 'model',
    created,
    owned_by: 'vllm',
    root,
    parent: null,
    max_model_len: maxModelLen,
    default_sampling_params: defaults,
    permission: [
      {
        id: `modelperm-${randomId()}`,
        object: 'model_permission',
        created,
        allow_create_engine: false,
        allow_sampling: true,
        allow_logprobs: true,
        allow_search_indices: false,
        allow_view: true,
        allow_fine_tuning: false,
        organization: '*',
        group: null,
        is_blocking: false,
      },
    ],
  }));
  return { object: 'list', data };
}
