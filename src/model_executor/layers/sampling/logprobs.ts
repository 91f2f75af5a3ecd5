// Logprobs of a position from the raw logits (vLLM's default logprobs_mode
// 'raw_logprobs': log-softmax before penalties, temperature and filtering).
import type { PositionLogprobs } from '../../../core/types.js';
import { expNonPositive } from './fast_exp.js';
import { topKIndices } from './select.js';

/** log(sum(exp(row))) in f64; -inf for a row of -inf. */
export function logSumExp(row: Float32Array): number {
  let m = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i]! > m) m = row[i]!;
  if (m === -Infinity || !Number.isFinite(m)) return m;
  let s = 0;
  for (let i = 0; i < row.length; i++) s += expNonPositive(row[i]! - m);
  return m + Math.log(s);
}

/**
 * Entry 0: `tokenId`, then the top `numLogprobs` tokens (-1: the whole vocabulary),
 * best first; rank = 1 + the number of tokens with a strictly larger logprob.
 */
export function gatherLogprobs(row: Float32Array, tokenId: number, numLogprobs: number): PositionLogprobs {
  const lse = logSumExp(row);
  const n = numLogprobs === -1 ? row.length : numLogprobs;
  const top = topKIndices(row, n);
  const tokenIds = new Array<number>(top.length + 1);
  const logprobs = new Array<number>(top.length + 1);
  const chosen = row[tokenId]!;
  tokenIds[0] = tokenId;
  logprobs[0] = chosen - lse;
  for (let j = 0; j < top.length; j++) {
    tokenIds[j + 1] = top[j]!;
    logprobs[j + 1] = row[top[j]!]! - lse;
  }
  let greater = 0;
  for (let i = 0; i < row.length; i++) if (row[i]! > chosen) greater++;
  return { tokenIds, logprobs, rank: greater + 1 };
}

/**
 * Prompt logprobs: row i of `logits` ([numRows, vocab]) predicts nextTokenIds[i],
 * the prompt token that follows it.
 */
export function computePromptLogprobs(
  logits: Float32Array, // [numRows, vocab]
  vocab: number,
  nextTokenIds: readonly number[],
  numLogprobs: number,
): PositionLogprobs[] {
  if (logits.length < nextTokenIds.length * vocab) {
    throw new RangeError(`prompt logprobs: ${nextTokenIds.length} rows of ${vocab} need ${nextTokenIds.length * vocab} logits, got ${logits.length}`);
  }
  const out: PositionLogprobs[] = [];
  for (let i = 0; i < nextTokenIds.length; i++) {
    out.push(gatherLogprobs(logits.subarray(i * vocab, (i + 1) * vocab), nextTokenIds[i]!, numLogprobs));
  }
  return out;
}
