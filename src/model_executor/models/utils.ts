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
