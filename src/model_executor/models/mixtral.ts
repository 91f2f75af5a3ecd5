// MixtralForCausalLM: Mistral's attention (a window on every layer when sliding_window
// is set) with a sparse MoE block in every layer: num_local_experts experts, the top
// num_experts_per_tok (2) per token, weights always renormalized. The Hub's files name
// it block_sparse_moe with experts' w1 (gate), w3 (up), w2 (down); transformers 5
// saves mlp.gate and stacked mlp.experts.gate_up_proj / down_proj, read as well.
import type { ModelConfig } from '../../config/types.js';
import type { WeightLoader } from '../weight_loader.js';
import { DecoderForCausalLM } from './decoder.js';
import { intKey, sparseMoeBlock } from './moe.js';

export class MixtralForCausalLM extends DecoderForCausalLM {
  constructor(config: ModelConfig, w: WeightLoader) {
    super(config, w, {
      mlp: (_i, p) => {
        const hub = w.source.isDummy || w.has(`${p}.block_sparse_moe.gate.weight`);
        return sparseMoeBlock(config, w, `${p}.${hub ? 'block_sparse_moe' : 'mlp'}`, {
          numExperts: intKey(config, 'num_local_experts', 8), topK: intKey(config, 'num_experts_per_tok', 2),
          intermediate: config.intermediateSize, renormalize: true,
          expertNames: hub ? ['w1', 'w3', 'w2'] : ['gate_proj', 'up_proj', 'down_proj'],
        });
      },
    });
  }
}
