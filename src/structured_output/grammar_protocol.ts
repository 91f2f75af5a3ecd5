// What crosses between the engine-core thread (StructuredOutputManager, manager.ts)
// and the grammar thread (grammar_thread.ts), which owns the xgrammar instance.
//
// Messages go over one MessageChannel and are read with receiveMessageOnPort on both
// sides, so neither side needs its event loop to see them. The step's bitmask goes
// back through shared memory: the grammar thread writes the rows into `bitmask` and
// then stores the fill's sequence number in ctl[CTL_FILL_DONE] (Atomics.notify), which
// the engine waits for (Atomics.wait) just before sampling.
import type { MessagePort } from 'node:worker_threads';
import type { GrammarSpec } from './params.js';

/** Indices into the control words (an Int32Array over a SharedArrayBuffer). */
export const CTL_FILL_DONE = 0; // sequence number of the last fill written
export const CTL_NOTICES = 1; // bumped after every notice posted (the engine's idle wait)
export const CTL_DEAD = 2; // 1 once the grammar thread stopped for good
export const CTL_WORDS = 4;
/** After the words, two float64 counters (one writer each, read by benchmarks): */
export const STAT_FILL_MS = 0; // ms the grammar thread spent filling, summed
export const STAT_WAIT_MS = 1; // ms the engine waited for fills before sampling, summed
export const CTL_BYTES = CTL_WORDS * 4 + 2 * 8;

/** The float64 counters of a control buffer. */
export function ctlStats(ctl: Int32Array): Float64Array {
  return new Float64Array(ctl.buffer, CTL_WORDS * 4, 2);
}

/** Engine -> grammar thread, in order. */
export type ToGrammarMessage =
  /** Compile (or take from the cache) the request's grammar, then build its matcher. */
  | { type: 'init'; id: string; spec: GrammarSpec; eos: number[] }
  /**
   * Accepted tokens, request by request: ids[i]'s matcher rolls back rollbacks[i]
   * tokens, then takes the next counts[i] tokens of `tokens`.
   */
  | { type: 'accepts'; ids: string[]; counts: Int32Array; tokens: Int32Array; rollbacks: Int32Array }
  /** Fill rows 0..ids.length-1 of the bitmask for these requests (full rows for unknown or terminated matchers). */
  | { type: 'fill'; seq: number; ids: string[]; buffer?: SharedArrayBuffer }
  | { type: 'release'; id: string }
  /** Test hook: while held, queued compiles wait (fills and accepts are still served). */
  | { type: 'hold'; on: boolean }
  /** Test hook: the handler throws, as a bug in the thread would. */
  | { type: 'crash' }
  | { type: 'shutdown' };

/** A batch of messages posted together (one postMessage per step or so). */
export type ToGrammarBatch = ToGrammarMessage[];

/** Grammar thread -> engine. */
export type FromGrammarMessage =
  /** The thread's vocabulary is built: rows are ceil(vocabSize / 32) words. */
  | { type: 'started'; vocabSize: number }
  /** The request's matcher exists; `compiled` when this took a compile (not a cache hit). */
  | { type: 'ready'; id: string; key: string; compiled: boolean; ms: number }
  /** The request's grammar failed (to compile, or later in its matcher): it is finished with this error. */
  | { type: 'failed'; id: string; error: string }
  /** A token the grammar rejected (only possible for a row sampled without its mask). */
  | { type: 'rejected'; id: string; tokens: number[] }
  /** The thread cannot go on (every grammar is then failed). */
  | { type: 'fatal'; error: string };

export interface GrammarThreadData {
  tokenizerDir: string;
  vocabSize: number;
  port: MessagePort;
  ctl: SharedArrayBuffer;
}

/** The compile cache's key (the tokenizer is fixed per thread). */
export function grammarCacheKey(spec: GrammarSpec): string {
  return `${spec.kind}\u0000${spec.anyWhitespace ? 1 : 0}\u0000${spec.spec}`;
}
