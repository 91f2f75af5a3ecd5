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

function tokenText(id: number, lp: Logprob | undefined, tokenizer: Tokenizer): string {
  return lp?.decodedToken ?? tokenizer.decode([id]);
}

/** Python's len(): code points, not UTF-16 units. */
function pyLen(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/**
 * `steps[i]` holds the logprobs at `tokenIds[i]` (null for the first prompt token).
 * top_logprobs has the chosen token plus the `numTop` most likely (vLLM's rule).
 */
export function completionLogprobs(
  tokenIds: readonly number[],
  steps: readonly (Record<number, Logprob> | null)[],
  numTop: number,
  tokenizer: Tokenizer,
  initialTextOffset = 0,
): CompletionLogProbs {
  const out: CompletionLogProbs = { text_offset: [], token_logprobs: [], tokens: [], top_logprobs: [] };
  let offset = initialTextOffset;
  tokenIds.forEach((id, i) => {
    const step = steps[i] ?? null;
    let token: string;
    if (step === null) {
      token = tokenizer.decode([id]);
      out.token_logprobs.push(null);
      out.top_logprobs.push(null);
    } else {
      token = tokenText(id, step[id], tokenizer);
      out.token_logprobs.push(step[id] ? clamp(step[id].logprob) : null);
      const top: Record<string, number> = {};
      for (const [tid, lp] of ordered(step, id).slice(0, numTop + 1)) top[tokenText(tid, lp, tokenizer)] = clamp(lp.logprob);
      out.top_logprobs.push(top);
    }
    out.tokens.push(token);
    out.text_offset.push(offset);
    offset += pyLen(token);
  });
  return out;
}

function chatLogProb(token: string, logprob: number): ChatLogProb {
  return { token, logprob: clamp(logprob), bytes: [...Buffer.from(token, 'utf8')] };
}

/** Chat logprobs of the sampled tokens; top_logprobs has the `numTop` most likely, by rank. */
export function chatLogprobs(
  tokenIds: readonly number[],
  steps: readonly Record<number, Logprob>[],
  numTop: number,
  tokenizer: Tokenizer,
): ChatLogProbsContent[] {
  return tokenIds.map((id, i) => {
    const step = steps[i] ?? {};
    const chosen = step[id];
    const top = Object.entries(step)
      .map(([tid, lp]) => [Number(tid), lp] as [number, Logprob])
      .sort((a, b) => a[1].rank - b[1].rank)
      .slice(0, numTop)
      .map(([tid, lp]) => chatLogProb(tokenText(tid, lp, tokenizer), lp.logprob));
    return { ...chatLogProb(tokenText(id, chosen, tokenizer), chosen?.logprob ?? MIN_LOGPROB), top_logprobs: top };
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
