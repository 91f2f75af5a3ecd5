// Logprobs in each API's format: the legacy completions format (tokens,
// token_logprobs, top_logprobs as {token: logprob}, text_offset) and the chat format
// (content: [{token, logprob, bytes, top_logprobs: [...]}]).
import type { Logprob } from '../../outputs.js';
import type { Tokenizer } from '../../tokenizer/tokenizer.js';
import type { ChatLogProb, ChatLogProbsContent, CompletionLogProbs } from './protocol.js';

/** OpenAI's stand-in for -inf (JSON has no infinities). */
const MIN_LOGPROB = -9999.0;

function clamp(logprob: number): number {
  return Number.isNaN(logprob) ? MIN_LOGPROB : Math.max(logprob, MIN_LOGPROB);
}

/** The chosen token first, then the others by rank (JS orders integer keys numerically). */
function ordered(step: Record<number, Logprob>, chosen: number): [number, Logprob][] {
  const rest = Object.entries(step)
    .map(([id, lp]) => [Number(id), lp] as [number, Logprob])
    .filter(([id]) => id !== chosen)
    .sort((a, b) => a[1].rank - b[1].rank);
  return step[chosen] ? [[chosen, step[chosen]], ...rest] : rest;
}

/** The text shown for a token: its decoded text, or 'token_id:N' (--return-tokens-as-token-ids). */
function tokenText(id: number, lp: Logprob | undefined, tokenizer: Tokenizer, asTokenIds = false): string {
  if (asTokenIds) return `token_id:${id}`;
  return lp?.decodedToken ?? tokenizer.decode([id]);
}

/** The first `numTop` entries; -1 means all of them (the whole vocabulary when asked for). */
function firstN<T>(xs: T[], numTop: number): T[] {
  return numTop === -1 ? xs : xs.slice(0, numTop);
}

/** Python's len(): code points, not UTF-16 units. */
function pyLen(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/**
 * `steps[i]` holds the logprobs at `tokenIds[i]` (null for the first prompt token).
 * top_logprobs has the chosen token plus the `numTop` most likely (vLLM's rule);
 * `asTokenIds` shows every token as 'token_id:N'.
 */
export function completionLogprobs(
  tokenIds: readonly number[],
  steps: readonly (Record<number, Logprob> | null)[],
  numTop: number,
  tokenizer: Tokenizer,
  initialTextOffset = 0,
  asTokenIds = false,
): CompletionLogProbs {
  const out: CompletionLogProbs = { text_offset: [], token_logprobs: [], tokens: [], top_logprobs: [] };
  let offset = initialTextOffset;
  tokenIds.forEach((id, i) => {
    const step = steps[i] ?? null;
    let token: string;
    if (step === null) {
      token = asTokenIds ? `token_id:${id}` : tokenizer.decode([id]);
      out.token_logprobs.push(null);
      out.top_logprobs.push(null);
    } else {
      token = tokenText(id, step[id], tokenizer, asTokenIds);
      out.token_logprobs.push(step[id] ? clamp(step[id].logprob) : null);
      const top: Record<string, number> = {};
      const entries = ordered(step, id);
      for (const [tid, lp] of numTop === -1 ? entries : entries.slice(0, numTop + 1)) {
        top[tokenText(tid, lp, tokenizer, asTokenIds)] = clamp(lp.logprob);
      }
      out.top_logprobs.push(top);
    }
    out.tokens.push(token);
    out.text_offset.push(offset);
    offset += pyLen(token);
  });
  return out;
}

function chatLogProb(token: string, logprob: number, bytesOf = token): ChatLogProb {
  return { token, logprob: clamp(logprob), bytes: [...Buffer.from(bytesOf, 'utf8')] };
}

/**
 * Chat logprobs of the sampled tokens; top_logprobs has the `numTop` most likely, by
 * rank (-1: all). With `asTokenIds` tokens read 'token_id:N'; as in vLLM, the sampled
 * token's bytes stay those of its text, the alternatives' those of what is shown.
 */
export function chatLogprobs(
  tokenIds: readonly number[],
  steps: readonly Record<number, Logprob>[],
  numTop: number,
  tokenizer: Tokenizer,
  asTokenIds = false,
): ChatLogProbsContent[] {
  return tokenIds.map((id, i) => {
    const step = steps[i] ?? {};
    const chosen = step[id];
    const ranked = Object.entries(step)
      .map(([tid, lp]) => [Number(tid), lp] as [number, Logprob])
      .sort((a, b) => a[1].rank - b[1].rank);
    const top = firstN(ranked, numTop).map(([tid, lp]) => chatLogProb(tokenText(tid, lp, tokenizer, asTokenIds), lp.logprob));
    const text = tokenText(id, chosen, tokenizer);
    return { ...chatLogProb(asTokenIds ? `token_id:${id}` : text, chosen?.logprob ?? MIN_LOGPROB, text), top_logprobs: top };
  });
}

/** Prompt logprobs in vLLM's response format: per position {token_id: {logprob, rank, decoded_token}} (null first). */
export function promptLogprobsJson(
  steps: readonly (Record<number, Logprob> | null)[] | null,
): (Record<string, { logprob: number; rank: number; decoded_token: string }> | null)[] | null {
  if (steps === null) return null;
  return steps.map((step) => {
    if (step === null) return null;
    const out: Record<string, { logprob: number; rank: number; decoded_token: string }> = {};
    for (const [id, lp] of Object.entries(step)) out[id] = { logprob: clamp(lp.logprob), rank: lp.rank, decoded_token: lp.decodedToken };
    return out;
  });
}
