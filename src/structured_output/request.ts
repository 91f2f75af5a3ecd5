// The engine thread's records of structured outputs: a request's grammar state
// (vLLM's StructuredOutputRequest), what the manager reads of a request, and the
// step's bitmask handle that crosses scheduler -> runner.
import { grammarCacheKey } from './grammar_protocol.js';
import { type GrammarSpec, grammarSpecOf, type StructuredOutputsParams } from './params.js';

/** A request's structured-output state on the engine thread (vLLM's StructuredOutputRequest). */
export class StructuredOutputRequest {
  readonly spec: GrammarSpec;
  readonly key: string;
  /** 'compiling' until the grammar thread's notice; 'failed' then ends the request. */
  status: 'compiling' | 'ready' | 'failed' = 'compiling';
  error: string | null = null;
  /** False while a reasoning model is still thinking: no mask until its end-of-reasoning token. */
  reasoningEnded: boolean;
  /**
   * The matcher accepted a stop token. Known here without asking the thread: the
   * matchers are built with terminate-without-stop off, so xgrammar terminates
   * exactly when it accepts one of the request's EOS ids (its stop tokens), the same
   * token that checkStop ends the request on ('stop').
   */
  terminated = false;
  /** Tokens posted to the matcher (what a rollback can undo). */
  numAccepted = 0;

  constructor(params: StructuredOutputsParams, reasoning: boolean) {
    this.spec = grammarSpecOf(params);
    this.key = grammarCacheKey(this.spec);
    this.reasoningEnded = !reasoning;
  }

  get isReady(): boolean {
    return this.status !== 'compiling';
  }
}

/** What the manager needs to know about a request. */
export interface ConstrainedRequest {
  readonly requestId: string;
  readonly promptTokenIds: readonly number[];
  readonly eosTokenIds: readonly number[];
  readonly outputTokenIds: readonly number[];
  structuredOutputRequest: StructuredOutputRequest | null;
}

export interface StructuredOutputManagerOptions {
  /** Folder with the tokenizer.json the grammar's vocabulary comes from. */
  tokenizerDir: string;
  /** Width of the logits. */
  vocabSize: number;
  /** Token ids that end reasoning (e.g. </think>); null: no reasoning parser. */
  reasoningEndTokenIds?: readonly number[] | null;
  /** Token ids that open it (<think>): a prompt whose last think block is closed starts with reasoning ended. */
  reasoningStartTokenIds?: readonly number[] | null;
}

/**
 * One step's bitmask: row i constrains request reqIds[i]. The rows live in shared
 * memory written by the grammar thread: read them through awaitGrammarBitmask
 * (grammar_bitmask.ts), valid until the next schedule().
 */
export interface GrammarBitmask {
  reqIds: string[];
  /** [reqIds.length, ceil(vocab/32)] int32; bit t%32 of word t/32 set = token t allowed. */
  bitmask: Int32Array;
  /** The grammar thread's control words (grammar_protocol.ts) and this fill's number. */
  ctl: Int32Array;
  seq: number;
}

/** Engine-side counters of the grammar thread's work (benchmarks). */
export interface GrammarStats {
  fills: number;
  /** Time the grammar thread spent filling, summed (ms). */
  fillMs: number;
  /** Time the engine thread waited for fills before sampling, summed (ms). */
  waitMs: number;
}

