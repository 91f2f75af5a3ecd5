// Qwen3MoeForCausalLM: Qwen3's attention (per-head q/k norms) with a sparse MoE block
// as the MLP of every layer that qwenSparseLayers picks (num_experts,
// num_experts_per_tok, moe_intermediate_size, norm_topk_prob, decoder_sparse_step,
// mlp_only_layers); the others keep a dense MLP.
import type { ModelConfig } from '../../config/types.js';
import type { WeightLoader } from '../weight_loader.js';
import { DecoderForCausalLM } from './decoder.js';
import { qwenMoeMlp } from './moe.js';

export class Qwen3MoeForCausalLM extends DecoderForCausalLM {
  constructor(config: ModelConfig, w: WeightLoader) {
    super(config, w, { qkNorm: 'head', mlp: qwenMoeMlp(config, w, false) });
  }
}
