// After a step's sampling: each request that sampled gets its drafts for the next
// step from the proposer (vLLM's propose_draft_token_ids), unless speculation does
// not apply to it. Like vLLM, requests asking for logprobs or prompt logprobs and
// structured-output requests get none (their rows need the per-token logprobs or
// the grammar's mask, which verified drafts would skip); embeddings never sample.
import type { SamplingParams } from '../../sampling_params.js';
import { type BatchInputs, type CachedRequestState, numTokensOf, tokenAt } from '../input_batch.js';
import type { NgramProposer } from './ngram_proposer.js';

/** True when a request may carry drafts. */
export function specDecodeSupported(p: SamplingParams): boolean {
  return p.logprobs === null && (p.promptLogprobs === null || p.promptLogprobs === undefined) && !p.structuredOutputs;
}

function draftsFor(proposer: NgramProposer, s: CachedRequestState): number[] {
  const p = s.samplingParams;
  if (s.poolingParams || !specDecodeSupported(p)) return [];
  // Each step emits at least one token: drafts beyond max_tokens - 1 more could never be used.
  const left = (p.maxTokens ?? Infinity) - s.outputTokenIds.length - 1;
  return proposer.propose({ length: numTokensOf(s), at: (i) => tokenAt(s, i) }, left);
}

/** Per request of the batch (BatchInputs.reqs order): its drafts for the next step ([] for those that did not sample). */
export function proposeDrafts(proposer: NgramProposer, b: BatchInputs): number[][] {
  const out: number[][] = b.reqs.map(() => []);
  for (const r of b.samplingReqs) out[r] = draftsFor(proposer, b.reqs[r]);
  return out;
}
