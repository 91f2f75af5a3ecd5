// SmolLM3ForCausalLM: Llama's layers where some have no rotary embedding at all
// (no_rope_layers[i] = 0; default: every no_rope_layer_interval-th layer, 4), and an
// optional window on the layers layer_types marks sliding (when use_sliding_window).
import type { ModelConfig } from '../../config/types.js';
import type { WeightLoader } from '../weight_loader.js';
import { DecoderForCausalLM, RotaryTables } from './decoder.js';
import { layerSlidingWindows, optionalNumber } from './utils.js';

export function ropeLayers(config: ModelConfig): boolean[] {
  const n = config.numHiddenLayers;
  const list = config.hfConfig.no_rope_layers;
  if (Array.isArray(list)) {
    if (list.length !== n) throw new Error(`${config.model}/config.json: no_rope_layers has ${list.length} entries for ${n} layers`);
    return list.map((x) => Boolean(x));
  }
  const interval = optionalNumber(config, 'no_rope_layer_interval') ?? 4;
  return Array.from({ length: n }, (_, i) => (i + 1) % interval !== 0);
}

export class SmolLM3ForCausalLM extends DecoderForCausalLM {
  constructor(config: ModelConfig, w: WeightLoader) {
    const rotary = new RotaryTables(config, w).get();
    const windows = layerSlidingWindows(config);
    const rope = ropeLayers(config);
    super(config, w, { layerAttention: (i) => ({ slidingWindow: windows[i], rotary: rope[i] ? rotary : null }) });
  }
}
