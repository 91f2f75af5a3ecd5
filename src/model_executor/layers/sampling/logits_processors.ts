// The logits processors that run before sampling, in vLLM V1's order:
// allowed_token_ids mask, logit_bias, min_tokens, then the penalties. Each works
// in place on one request's row of logits ([vocab] f32) and skips itself when
// its parameter is unset.
import type { SamplingParams } from '../../../sampling_params.js';

/** Every token outside `allowed` gets -inf. `scratch` holds at least allowed.length values. */
export function applyAllowedTokenIds(row: Float32Array, allowed: readonly number[], scratch: Float32Array): void {
  const vocab = row.length;
  for (let j = 0; j < allowed.length; j++) {
    const id = allowed[j]!;
    scratch[j] = id >= 0 && id < vocab ? row[id]! : -Infinity;
  }
  row.fill(-Infinity);
  for (let j = 0; j < allowed.length; j++) {
    const id = allowed[j]!;
    if (id >= 0 && id < vocab) row[id] = scratch[j]!;
  }
}

/** Adds bias[id] to the logit of each token id in the map. */
export function applyLogitBias(row: Float32Array, bias: Record<number, number>): void {
  for (const key in bias) {
    const id = Number(key);
    if (id >= 0 && id < row.length) row[id] = row[id]! + bias[id]!;
  }
}

/** While fewer than minTokens tokens were generated, EOS and the stop token ids cannot be sampled. */
export function applyMinTokens(
  row: Float32Array,
  numOutputTokens: number,
  minTokens: number,
  stopIds: Iterable<number>,
): void {
  if (numOutputTokens >= minTokens) return;
  for (const id of stopIds) if (id >= 0 && id < row.length) row[id] = -Infinity;
}

/**
 * Repetition penalty over tokens seen in the prompt or the output (a positive logit
 * is divided by it, a negative one multiplied), then the OpenAI frequency
 * (x count in the output) and presence (once per distinct output token) penalties.
 */
export function applyPenalties(
  row: Float32Array,
  params: Pick<SamplingParams, 'repetitionPenalty' | 'frequencyPenalty' | 'presencePenalty'>,
  promptTokenIds: readonly number[],
  outputTokenIds: readonly number[],
): void {
  const vocab = row.length;
  const rep = params.repetitionPenalty;
  if (rep !== 1) {
    const seen = new Set<number>(promptTokenIds);
    for (const id of outputTokenIds) seen.add(id);
    const inv = 1 / rep;
    for (const id of seen) {
      if (id < 0 || id >= vocab) continue;
      const l = row[id]!;
      row[id] = l > 0 ? l * inv : l * rep;
    }
  }
  const freq = params.frequencyPenalty;
  const pres = params.presencePenalty;
  if ((freq !== 0 || pres !== 0) && outputTokenIds.length > 0) {
    const counts = new Map<number, number>();
    for (const id of outputTokenIds) counts.set(id, (counts.get(id) ?? 0) + 1);
    for (const [id, count] of counts) {
      if (id >= 0 && id < vocab) row[id] = row[id]! - freq * count - pres;
    }
  }
}

export function hasPenalties(params: SamplingParams): boolean {
  return params.repetitionPenalty !== 1 || params.frequencyPenalty !== 0 || params.presencePenalty !== 0;
}
