// Per-step state handed down through the model's forward pass (passed, never global).
// The attention records it carries are the attention backend's (attention/backends/backend.ts).
import type { AttentionBackend, AttentionContext, LayerKVCache } from '../attention/backends/backend.js';

export type { LayerKVCache } from '../attention/backends/backend.js';

export interface ForwardContext extends AttentionContext {
  attnBackend: AttentionBackend;
  kvCaches: LayerKVCache[];
}
