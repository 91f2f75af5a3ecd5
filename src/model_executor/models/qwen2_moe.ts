// Qwen2MoeForCausalLM: Qwen2's attention (q/k/v biases, qkv_bias) with a sparse MoE
// block whose output adds a shared expert scaled by sigmoid(shared_expert_gate(x));
// layers outside decoder_sparse_step / in mlp_only_layers keep a dense MLP.
import type { ModelConfig } from '../../config/types.js';
import type { WeightLoader } from '../weight_loader.js';
import { DecoderForCausalLM } from './decoder.js';
import { qwenMoeMlp } from './moe.js';

export class Qwen2MoeForCausalLM extends DecoderForCausalLM {
  constructor(config: ModelConfig, w: WeightLoader) {
    super(config, w, { mlp: qwenMoeMlp(config, w, true) });
  }
}
