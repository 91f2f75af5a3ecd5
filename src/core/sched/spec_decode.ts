// The scheduler's side of speculative decoding (vLLM V1's spec_token_ids handling in
// v1/core/sched/scheduler.py, and v1/spec_decode/metrics.py's SpecDecodingStats).
//
// A running request that caught up (numComputedTokens = numTokens - 1) may carry the
// draft tokens the runner proposed after its last step (Request.specTokenIds). The
// scheduler then schedules 1 + K tokens for it (its last token and the drafts) within
// the token budget and maxModelLen, allocating KV slots for all of them; the drafts
// it could not fit are dropped. After the step, of the K drafts the runner verified,
// `accepted` came back followed by one more token: the rejected drafts' KV is rolled
// back by taking them off numComputedTokens (their slots are overwritten when the
// request reaches those positions again; the blocks stay with the request, which
// still grows into them, as in vLLM). Prefix-cache hashes only ever cover
// Request.allTokenIds, so a block registers once its accepted tokens fill it.
import type { Request } from '../request.js';
import type { SpecDecodingStats } from '../types.js';

/** vLLM's SpecDecodingStats.new: zero counts for numSpecTokens positions. */
export function newSpecDecodingStats(numSpecTokens: number): SpecDecodingStats {
  return { numSpecTokens, numDrafts: 0, numDraftTokens: 0, numAcceptedTokens: 0, numAcceptedTokensPerPos: new Array<number>(numSpecTokens).fill(0) };
}

/** vLLM's observe_draft: one verified draft of numDraftTokens, numAccepted of them accepted (a prefix). */
export function observeDraft(s: SpecDecodingStats, numDraftTokens: number, numAccepted: number): void {
  s.numDrafts++;
  s.numDraftTokens += numDraftTokens;
  s.numAcceptedTokens += numAccepted;
  for (let i = 0; i < numAccepted; i++) s.numAcceptedTokensPerPos[i]++;
}

/**
 * After a running request got `numNewTokens` this step: keeps the drafts that fit
 * (request.specTokenIds is trimmed to them) and returns them, or null when none were
 * scheduled (then the request carries none into the step).
 */
export function scheduledSpecTokens(request: Request, numNewTokens: number): number[] | null {
  if (request.specTokenIds.length === 0) return null;
  const numScheduledSpec = request.numComputedTokens + numNewTokens - request.numTokens;
  if (numScheduledSpec <= 0) {
    request.specTokenIds = [];
    return null;
  }
  request.specTokenIds = request.specTokenIds.slice(0, numScheduledSpec);
  return request.specTokenIds.slice();
}

/** The scheduler's verified drafts: rolls back the rejected ones and counts them until the step's stats are taken. */
export class SpecDecodeTracker {
  private stats: SpecDecodingStats | null = null;

  /** numSpecTokens: K of the speculative config (0: off). */
  constructor(readonly numSpecTokens: number) {}

  /** A request scheduled with `drafts` came back with `generated` (./rollbackRejected). */
  observe(request: Request, drafts: readonly number[], generated: readonly number[]): void {
    const numAccepted = rollbackRejected(request, drafts, generated);
    this.stats ??= newSpecDecodingStats(Math.max(this.numSpecTokens, drafts.length));
    observeDraft(this.stats, drafts.length, numAccepted);
  }

  /** The counts since the last call; null when no draft was verified. */
  takeStats(): SpecDecodingStats | null {
    const s = this.stats;
    this.stats = null;
    return s;
  }
}

/**
 * The step's result for a request that was scheduled with drafts: generated holds the
 * accepted drafts then one token, so generated.length - 1 were accepted; the rejected
 * ones come off numComputedTokens. Returns the number accepted.
 */
export function rollbackRejected(request: Request, scheduledDrafts: readonly number[], generated: readonly number[]): number {
  const numAccepted = Math.max(0, generated.length - 1);
  const numRejected = scheduledDrafts.length - numAccepted;
  if (numRejected < 0) throw new Error(`request ${request.requestId}: ${generated.length} tokens back for ${scheduledDrafts.length} drafts`);
  request.numComputedTokens -= numRejected;
  return numAccepted;
}
