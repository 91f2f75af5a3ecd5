// What every model class provides to the model runner.
import type { ModelConfig } from '../../config/types.js';
import type { Tensor } from '../../native/index.js';
import type { ForwardContext } from '../forward_context.js';
import type { WeightLoader } from '../weight_loader.js';

export interface CausalLM {
  /** inputIds [T] int32, positions [T] int32 -> final normed hidden states [T, hidden] */
  forward(ctx: ForwardContext, inputIds: Tensor, positions: Tensor): Tensor;
  /** hidden [n, hidden] -> logits [n, vocab] */
  computeLogits(ctx: ForwardContext, hidden: Tensor): Tensor;
  /** Each layer's sliding window (null: full attention), for the KV cache's block release. */
  attentionWindows?(): (number | null)[];
}

/** Builds a model from its config, reading weights through the loader. */
export type ModelFactory = (config: ModelConfig, loader: WeightLoader) => CausalLM;
