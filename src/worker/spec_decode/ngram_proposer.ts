// The n-gram proposer (vLLM V1's NgramProposer, "prompt lookup decoding"): drafts
// come from the request's own tokens. Find the longest suffix of the tokens, between
// promptLookupMin and promptLookupMax long, that also occurs earlier in them; the
// (up to) K tokens that followed that earlier occurrence are the draft. No model, no
// device work: a scan over host token ids after each step's sampling.
import type { SpeculativeConfig } from '../../config/speculative.js';

/** Read access to a request's tokens (prompt then outputs) without copying them. */
export interface TokenSequence {
  readonly length: number;
  at(i: number): number;
}

export function tokenSequence(tokens: readonly number[]): TokenSequence {
  return { length: tokens.length, at: (i) => tokens[i] };
}

/**
 * Draft tokens for `tokens`: the tokens after the earliest occurrence of the longest
 * matching suffix n-gram (minN <= n <= maxN), at most k of them (fewer when that
 * occurrence is near the end); [] without a match.
 *
 * NOTE: one pass over the candidate end positions e (an occurrence ends at e, before
 * the last token): the match length at e is how far tokens[e], tokens[e-1], ...
 * agree with the suffix, capped at maxN. Most positions fail at the first compare,
 * so a step costs about one read per context token. The longest length wins; among
 * equal lengths the earliest occurrence (vLLM's choice).
 */
export function findNgramDraft(tokens: TokenSequence, minN: number, maxN: number, k: number): number[] {
  const N = tokens.length;
  if (k <= 0 || N < minN + 1) return [];
  let bestLen = 0;
  let bestEnd = -1;
  for (let e = 0; e < N - 1; e++) {
    const cap = Math.min(maxN, e + 1);
    if (cap <= bestLen) continue; // cannot beat the best (and ties keep the earlier)
    let len = 0;
    while (len < cap && tokens.at(e - len) === tokens.at(N - 1 - len)) len++;
    if (len > bestLen) {
      bestLen = len;
      bestEnd = e;
      if (len === maxN) break; // nothing longer exists, and this is the earliest of its length
    }
  }
  if (bestLen < minN) return [];
  const start = bestEnd + 1;
  const end = Math.min(N, start + k);
  const out = new Array<number>(end - start);
  for (let i = start; i < end; i++) out[i - start] = tokens.at(i);
  return out;
}

export class NgramProposer {
  readonly k: number;
  readonly minN: number;
  readonly maxN: number;

  constructor(cfg: SpeculativeConfig, readonly maxModelLen: number) {
    this.k = cfg.numSpeculativeTokens;
    this.minN = cfg.promptLookupMin;
    this.maxN = cfg.promptLookupMax;
  }

  /**
   * Drafts for one request whose tokens are `tokens`; `maxDrafts` caps them further
   * (the tokens its max_tokens still allows, less the one every step emits anyway).
   * As vLLM, no draft reaches past maxModelLen.
   */
  propose(tokens: TokenSequence, maxDrafts = Infinity): number[] {
    const k = Math.min(this.k, this.maxModelLen - tokens.length, maxDrafts);
    return findNgramDraft(tokens, this.minN, this.maxN, k);
  }
}
