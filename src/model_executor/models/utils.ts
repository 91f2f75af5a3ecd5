// Helpers shared by the model files: the decoder-layer loop and per-layer
// attention windows from config.json.
import type { ModelConfig } from '../../config/types.js';
import type { Tensor } from '../../native/index.js';
import type { ForwardContext } from '../forward_context.js';

/**
 * Runs decoder layers. Each layer reads `hidden` (null before the first layer) and
 * writes its result into `out`; the scratch tensors it took from the workspace are
 * released right after it, so a step needs one layer's activations, not all of them.
 * out [T, hidden] -> returned as the last layer's result (null when there are none).
 */
export function runLayers<L>(ctx: ForwardContext, layers: readonly L[], out: Tensor,
  step: (layer: L, hidden: Tensor | null, out: Tensor) => void): Tensor | null {
  let hidden: Tensor | null = null;
  for (const layer of layers) {
    const m = ctx.ws.mark();
    // NOTE: reading `hidden` (== out) and writing `out` in one layer is safe: the
    // layer's first op consumes hidden and only its last op writes out.
    step(layer, hidden, out);
    ctx.ws.restore(m);
    hidden = out;
  }
  return hidden;
}

/**
 * Each layer's sliding window (null = full attention). HF's `layer_types` decides
 * when present; else Qwen's `use_sliding_window` + `max_window_layers` (sliding from
 * layer max_window_layers on); else `sliding_window` applies to every layer (Mistral).
 */
export function layerSlidingWindows(config: ModelConfig): (number | null)[] {
  const hf = config.hfConfig;
  const n = config.numHiddenLayers;
  const window = hf.use_sliding_window === false ? null : config.slidingWindow;
  const types = hf.layer_types;
  if (Array.isArray(types)) {
    if (types.length !== n) {
      throw new Error(`${config.model}/config.json: layer_types has ${types.length} entries for ${n} layers (num_hidden_layers)`);
    }
    return types.map((t, i) => {
      if (t === 'full_attention') return null;
      if (t === 'sliding_attention') return window;
      throw new Error(`${config.model}/config.json: layer_types[${i}] '${String(t)}' is not supported (full_attention, sliding_attention)`);
    });
  }
  const maxWindowLayers = hf.max_window_layers;
  if (window !== null && hf.use_sliding_window === true && typeof maxWindowLayers === 'number') {
    return Array.from({ length: n }, (_, i) => (i >= maxWindowLayers ? window : null));
  }
  return Array.from({ length: n }, () => window);
}

/**
 * The config with one slidingWindow for all layers, for models built by
 * LlamaForCausalLM (which gives every layer the same window).
 */
export function withUniformSlidingWindow(config: ModelConfig): ModelConfig {
  const windows = layerSlidingWindows(config);
  if (windows.some((w) => w !== windows[0])) {
    throw new Error(
      `${config.architectures[0]} with layers that mix sliding-window and full attention ` +
        `(config.json layer_types / max_window_layers) is not supported; set use_sliding_window to false to run it with full attention`,
    );
  }
  return { ...config, slidingWindow: windows[0] ?? null };
}

/**
 * The config with `layer_types` filled in from the family's default pattern when
 * config.json has none (older Gemma 2 / 3 configs): layer i's type is pattern(i).
 */
export function withLayerTypes(config: ModelConfig, pattern: (layer: number) => 'sliding_attention' | 'full_attention'): ModelConfig {
  if (Array.isArray(config.hfConfig.layer_types)) return config;
  const layerTypes = Array.from({ length: config.numHiddenLayers }, (_, i) => pattern(i));
  return { ...config, hfConfig: { ...config.hfConfig, layer_types: layerTypes } };
}

/** A config.json number that may be absent or null (then null). */
export function optionalNumber(config: ModelConfig, key: string): number | null {
  const v = config.hfConfig[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${config.model}/config.json: ${key} must be a number, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Refuses config.json settings that change the math in a way this architecture does
 * not implement: key -> the values that are fine (absent / null always are).
 */
export function rejectUnsupported(config: ModelConfig, allowed: Record<string, readonly unknown[]>): void {
  for (const [key, ok] of Object.entries(allowed)) {
    const v = config.hfConfig[key];
    if (v === undefined || v === null || ok.includes(v)) continue;
    throw new Error(
      `${config.architectures[0]}: config.json ${key}=${JSON.stringify(v)} is not supported by vllm-ts ` +
        `(supported: ${ok.map((x) => JSON.stringify(x)).join(', ')}); running it would give wrong outputs`,
    );
  }
}
