// vLLM's checks of --tensor-parallel-size against the model (ModelConfig.
// verify_with_parallel_config and the divide() asserts of its parallel layers),
// made before any rank starts: one sentence naming what does not divide.
import type { ModelConfig } from './types.js';

export class ParallelConfigError extends Error {
  override name = 'ParallelConfigError';
}

function divisible(total: unknown, tp: number, what: string): void {
  if (typeof total !== 'number' || total <= 0) return;
  if (total % tp !== 0) throw new ParallelConfigError(`${what} (${total}) must be divisible by tensor parallel size (${tp}).`);
}

/** Throws ParallelConfigError when the model cannot be sharded over `tp` ranks. */
export function verifyTensorParallel(m: ModelConfig, tp: number): void {
  if (tp === 1) return;
  const hf = m.hfConfig;
  divisible(m.numAttentionHeads, tp, 'Total number of attention heads');
  const kv = m.numKeyValueHeads;
  if (kv >= tp) divisible(kv, tp, 'Total number of key/value heads');
  else if (tp % kv !== 0) {
    throw new ParallelConfigError(`Tensor parallel size (${tp}) must be a multiple of the number of key/value heads (${kv}) to replicate them.`);
  }
  divisible(m.intermediateSize, tp, 'intermediate_size');
  divisible(hf.moe_intermediate_size, tp, 'moe_intermediate_size');
  divisible(hf.shared_expert_intermediate_size, tp, 'shared_expert_intermediate_size');
  if (m.architectures.includes('Olmo2ForCausalLM') && kv % tp !== 0) {
    throw new ParallelConfigError(`Olmo2ForCausalLM's k_norm spans all ${kv} key/value heads: they must be divisible by tensor parallel size (${tp}).`);
  }
}
