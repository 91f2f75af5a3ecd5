// GET /v1/models (vLLM's OpenAIServingModels).
import { randomId } from './serving_engine.js';
import type { ModelCard } from './protocol.js';

export function listModels(servedModelNames: string[], root: string, maxModelLen: number) {
  const created = Math.floor(Date.now() / 1000);
  const data: ModelCard[] = servedModelNames.map((id) => ({
    id,
    object: 'model',
    created,
    owned_by: 'vllm',
    root,
    parent: null,
    max_model_len: maxModelLen,
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
