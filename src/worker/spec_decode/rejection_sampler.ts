// Verification of n-gram drafts in the sampler seam (vLLM V1's RejectionSampler,
// v1/sample/rejection_sampler.py, for a draft without probabilities).
//
// A request with drafts d_1..d_k computed k + 1 positions this step; row j holds the
// target model's logits after the last known token and d_1..d_j. vLLM's rule keeps
// the target distribution exactly: accept d_{j+1} with probability min(1, p_j/q_j),
// on the first rejection emit a token drawn from the residual max(p_j - q_j, 0)
// normalized, and after k acceptances a bonus token drawn from p_k. An n-gram draft
// is deterministic: q_j is one-hot at d_{j+1}, so the acceptance probability is
// p_j(d_{j+1}) and the residual is p_j with d_{j+1} removed, renormalized.
//
// NOTE: we draw that rule with one sample per row: x_j ~ p_j by the normal sampler
// (the same temperature / top-k / top-p / min-p, penalties over the tokens before the
// row, the request's own seeded draw for that output position), accept d_{j+1} iff
// x_j = d_{j+1}, and on a mismatch x_j itself is the emitted token. P(accept) =
// p_j(d_{j+1}), and x_j given a mismatch is distributed as p_j restricted to the other
// tokens, normalized: exactly the residual. Greedy rows (x_j = argmax) give vLLM's
// greedy rule (accept while the draft equals the argmax, then the argmax). The draws
// of output position n are the ones the non-speculative sampler would use for it, so
// a seeded request's draws stay a function of (seed, position) (preemption-safe, and
// independent of its batch); a rejected row's draw was never used by a kept token.
// tests/spec_decode/rejection_sampler.test.ts checks the emitted sequences against a
// brute-force reference of vLLM's rule.
import type { PositionLogprobs } from '../../core/types.js';
import type { Tensor, Workspace } from '../../native/index.js';
import type { CachedRequestState } from '../input_batch.js';
import type { StepSampler } from '../sampler.js';

/**
 * The tokens one request emits, from its rows' samples x_0..x_k and drafts d_1..d_k:
 * the drafts while x_j = d_{j+1}, then the first mismatching x_j (recovered) or, with
 * every draft accepted, x_k (bonus). Length: accepted + 1.
 */
export function acceptDrafts(sampled: ArrayLike<number>, drafts: readonly number[]): number[] {
  const out: number[] = [];
  for (let j = 0; j <= drafts.length; j++) {
    out.push(sampled[j]);
    if (j === drafts.length || sampled[j] !== drafts[j]) break;
  }
  return out;
}

/** The state row j of a request samples with: its outputs followed by the first j drafts (penalties, min_tokens, seeds read them). */
export function draftRowState(s: CachedRequestState, drafts: readonly number[], j: number): CachedRequestState {
  return j === 0 ? s : { ...s, outputTokenIds: s.outputTokenIds.concat(drafts.slice(0, j)) };
}

/**
 * Samples every row of the step (logits [sum(1 + k_r), vocab], the rows of
 * BatchInputs.sampleRows) and applies the acceptance rule: per sampling request, the
 * tokens it emits. Logprobs only for requests without drafts (those asking for
 * logprobs never get drafts).
 */
export function rejectionSample(
  sampler: StepSampler, ws: Workspace, logits: Tensor, reqs: readonly CachedRequestState[], drafts: readonly number[][],
): { tokenIds: number[][]; logprobs: (PositionLogprobs | null)[] } {
  const rowStates: CachedRequestState[] = [];
  reqs.forEach((s, r) => {
    for (let j = 0; j <= drafts[r].length; j++) rowStates.push(draftRowState(s, drafts[r], j));
  });
  const res = sampler.sample(ws, logits, rowStates); // one token per row
  const tokenIds: number[][] = [];
  const logprobs: (PositionLogprobs | null)[] = [];
  let row = 0;
  reqs.forEach((_, r) => {
    const k = drafts[r].length;
    tokenIds.push(acceptDrafts(res.tokenIds.slice(row, row + k + 1), drafts[r]));
    logprobs.push(k === 0 ? res.logprobs[row] : null);
    row += k + 1;
  });
  return { tokenIds, logprobs };
}
