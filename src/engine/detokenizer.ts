// Incremental detokenization with stop strings (vLLM's v1/engine/detokenizer.py).
import type { SamplingParams } from '../sampling_params.js';

/** What the detokenizer needs of a tokenizer (src/tokenizer/tokenizer.ts's Tokenizer fits). */
export interface DecodingTokenizer {
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
}

export type DetokenizerParams = Pick<
  SamplingParams,
  'skipSpecialTokens' | 'spacesBetweenSpecialTokens' | 'stop' | 'includeStopStrInOutput' | 'minTokens'
>;

/** Prompt tokens decoded with the first output tokens, so that leading spaces come out right. */
const INITIAL_PROMPT_CONTEXT = 5;

function stripTrailingReplacement(text: string): string {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 0xfffd) end--;
  return end === text.length ? text : text.slice(0, end);
}

/** True when cutting `text` at `at` would split a surrogate pair. */
function splitsSurrogatePair(text: string, at: number): boolean {
  if (at <= 0 || at >= text.length) return false;
  const c = text.charCodeAt(at - 1);
  return c >= 0xd800 && c <= 0xdbff;
}

/**
 * vLLM's check_stop_strings: looks for each stop string (in order) in the text that
 * could contain a new match (the last newCharCount chars plus the stop length - 1
 * before them). Returns [stop string, index to truncate to (-1: no truncation)].
 */
export function checkStopStrings(
  outputText: string,
  newCharCount: number,
  stop: readonly string[],
  includeInOutput: boolean,
): [string, number] | null {
  if (newCharCount <= 0 || stop.length === 0) return null;
  for (const stopStr of stop) {
    const from = Math.max(0, outputText.length - newCharCount - stopStr.length + 1);
    let stopIndex = outputText.indexOf(stopStr, from);
    if (stopIndex === -1) continue;
    if (includeInOutput) {
      stopIndex += stopStr.length;
      if (stopIndex >= outputText.length) return [stopStr, -1];
    }
    return [stopStr, stopIndex];
  }
  return null;
}

/**
 * Per request: turns sampled token ids into text as they come, matches stop
 * strings and hands out the text that is safe to stream.
 *
 * NOTE: prefix/read offsets over tokenizer.decode: `prefixOffset..readOffset` are
 * tokens already turned into text, kept as context; each new token decodes the
 * window `prefixOffset..end` and the text past the context's is new. Decoding in
 * context keeps a token's leading space (SentencePiece drops it at the start of a
 * decode). A window ending in U+FFFD (a multi-byte character split across tokens)
 * emits only what comes before the U+FFFDs and keeps the window open until the
 * character completes, so the text never holds broken UTF-8.
 */
export class IncrementalDetokenizer {
  /** Text of the output tokens so far (cut at a matched stop string). */
  outputText = '';
  /** Prompt then output token ids. */
  readonly tokenIds: number[];
  readonly promptLen: number;
  readonly stop: readonly string[];
  readonly includeStopStrInOutput: boolean;
  readonly minTokens: number;
  readonly skipSpecialTokens: boolean;
  /** Chars held back from streaming while they could be the start of a stop string. */
  readonly stopBufferLength: number;

  private prefixOffset: number;
  private readOffset: number;
  /** Length of decode(tokenIds[prefixOffset, readOffset)). */
  private prefixLen: number;
  /** Chars of the open window already appended to outputText past prefixLen. */
  private emittedPastPrefix = 0;
  private lastOutputTextOffset = 0;

  constructor(
    readonly tokenizer: DecodingTokenizer,
    promptTokenIds: readonly number[],
    params: DetokenizerParams,
  ) {
    // NOTE: spacesBetweenSpecialTokens only changes HF's slow tokenizers; with a fast
    // tokenizer (ours) it has no effect, as in vLLM's fast detokenizer.
    this.tokenIds = promptTokenIds.slice();
    this.promptLen = promptTokenIds.length;
    this.stop = params.stop;
    this.includeStopStrInOutput = params.includeStopStrInOutput;
    this.minTokens = params.minTokens;
    this.skipSpecialTokens = params.skipSpecialTokens;
    this.stopBufferLength =
      this.stop.length > 0 && !this.includeStopStrInOutput ? Math.max(...this.stop.map((s) => s.length)) - 1 : 0;
    this.readOffset = this.promptLen;
    this.prefixOffset = Math.max(0, this.promptLen - INITIAL_PROMPT_CONTEXT);
    this.prefixLen = this.decode(this.prefixOffset, this.readOffset).length;
  }

  get numOutputTokens(): number {
    return this.tokenIds.length - this.promptLen;
  }

  get outputTokenIds(): number[] {
    return this.tokenIds.slice(this.promptLen);
  }

  /**
   * Adds new output tokens; returns the stop string they completed, or null. When
   * the request ended on a stop token (EOS or a stop token id; `stopTerminated`),
   * that last token is not detokenized unless includeStopStrInOutput.
   */
  update(newTokenIds: readonly number[], stopTerminated = false): string | null {
    if (newTokenIds.length === 0) return null;
    let ids = newTokenIds;
    let skipped: number | null = null;
    if (stopTerminated && !this.includeStopStrInOutput) {
      skipped = ids[ids.length - 1]!;
      ids = ids.slice(0, -1);
    }
    let stopCheckOffset = this.outputText.length;
    for (const id of ids) {
      this.tokenIds.push(id);
      this.outputText += this.decodeNext();
      // Stop strings are not looked for in the text of the first minTokens tokens.
      if (this.minTokens > 0 && this.numOutputTokens <= this.minTokens) stopCheckOffset = this.outputText.length;
    }
    if (skipped !== null) this.tokenIds.push(skipped);

    if (this.stop.length === 0 || this.numOutputTokens <= this.minTokens) return null;
    const match = checkStopStrings(this.outputText, this.outputText.length - stopCheckOffset, this.stop, this.includeStopStrInOutput);
    if (match === null) return null;
    const [stopStr, truncateTo] = match;
    if (truncateTo !== -1) this.outputText = this.outputText.slice(0, truncateTo);
    return stopStr;
  }

  /**
   * Text to hand out: all of it (delta false) or what is new since the last call
   * (delta true). Until finished, the last stopBufferLength chars are held back.
   */
  getNextOutputText(finished: boolean, delta: boolean): string {
    let length = this.outputText.length - (finished ? 0 : this.stopBufferLength);
    if (splitsSurrogatePair(this.outputText, length)) length--;
    if (length < 0) length = 0;
    if (!delta) return length === this.outputText.length ? this.outputText : this.outputText.slice(0, length);
    const last = this.lastOutputTextOffset;
    if (last >= length) return '';
    this.lastOutputTextOffset = length;
    return this.outputText.slice(last, length);
  }

  private decode(start: number, end: number): string {
    if (start >= end) return '';
    return this.tokenizer.decode(this.tokenIds.slice(start, end), { skipSpecialTokens: this.skipSpecialTokens });
  }

  /** New text once tokenIds got one more token. */
  private decodeNext(): string {
    const full = this.decode(this.prefixOffset, this.tokenIds.length);
    const stable = stripTrailingReplacement(full);
    const start = this.prefixLen + this.emittedPastPrefix;
    const piece = stable.length > start ? stable.slice(start) : '';
    this.emittedPastPrefix += piece.length;
    if (stable.length === full.length && full.length > this.prefixLen) {
      // The window ends on a whole character: it becomes the next context. (Its
      // decode may start with U+FFFDs, the tail bytes of a character begun before
      // it; they come out the same in every later decode of the window.)
      this.prefixOffset = this.readOffset;
      this.readOffset = this.tokenIds.length;
      this.prefixLen = this.decode(this.prefixOffset, this.readOffset).length;
      this.emittedPastPrefix = 0;
    }
    return piece;
  }
}
