// PoolingParams: how an embedding request turns the prompt's final hidden states
// into one vector (vLLM's pooling runner for decoder-only models).
import { InvalidRequestError } from './errors.js';

export type PoolingType = 'last' | 'mean';

export interface PoolingParams {
  /** 'last': the last prompt token's hidden state; 'mean': the average over the prompt. */
  pooling: PoolingType;
  /** L2-normalize the pooled vector. */
  normalize: boolean;
}

export function makePoolingParams(init: Partial<PoolingParams> = {}): PoolingParams {
  const pooling = init.pooling ?? 'last';
  if (pooling !== 'last' && pooling !== 'mean') {
    throw new InvalidRequestError(`pooling must be 'last' or 'mean', got ${JSON.stringify(pooling)}`, 'pooling');
  }
  return { pooling, normalize: init.normalize ?? true };
}

/** Finishes a pooled vector: the mean's division and the optional L2 normalization. */
export function finishPooling(sum: Float64Array, count: number, p: PoolingParams): number[] {
  const out = Array.from(sum, (x) => (p.pooling === 'mean' ? x / count : x));
  if (p.normalize) {
    const norm = Math.sqrt(out.reduce((a, x) => a + x * x, 0));
    if (norm > 0) for (let i = 0; i < out.length; i++) out[i] /= norm;
  }
  return out;
}
