// Deterministic prompt sets for engine tests.
import { SamplingGenerator } from '../../src/model_executor/layers/sampling/generator.js';

/** n token-id prompts of lengths in [minLen, maxLen], ids in [3, vocab) (no special tokens). */
export function mixedPrompts(n: number, minLen: number, maxLen: number, vocab: number, seed = 1): number[][] {
  const g = new SamplingGenerator(seed);
  return Array.from({ length: n }, () => {
    const len = minLen + Math.floor(g.random() * (maxLen - minLen + 1));
    return Array.from({ length: len }, () => 3 + Math.floor(g.random() * (vocab - 3)));
  });
}
