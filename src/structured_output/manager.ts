// vLLM V1's StructuredOutputManager in the engine core: compiles each request's
// grammar (cached by kind, spec and tokenizer) off the schedule/execute path, fills
// the step's bitmask [numConstrained, ceil(vocab/32)] and advances the matchers on
// the accepted tokens.
//
// NOTE: xgrammar's WebAssembly build has no threads and cannot serialize a compiled
// grammar to hand it across threads, so compiles run on the engine thread, one per
// step, before the step's schedule(): a request waits in WAITING_FOR_FSM meanwhile and
// the others keep being scheduled.
import { initLogger } from '../logger.js';
import { type CompiledGrammar, bitmaskWidth, XgrammarBackend, type XgrammarGrammar } from './backend_xgrammar.js';
import { type GrammarSpec, grammarSpecOf, type StructuredOutputsParams } from './params.js';
import { readTokenizerVocab } from './vocab.js';

const logger = initLogger('structured_output');

/** A request's structured-output state (vLLM's StructuredOutputRequest). */
export class StructuredOutputRequest {
  readonly spec: GrammarSpec;
  grammar: XgrammarGrammar | null = null;
  /** Set when the grammar failed to compile (the request is then finished). */
  error: string | null = null;
  /** False while a reasoning model is still thinking: no mask until its end-of-reasoning token. */
  reasoningEnded: boolean;

  constructor(params: StructuredOutputsParams, reasoning: boolean) {
    this.spec = grammarSpecOf(params);
    this.reasoningEnded = !reasoning;
  }

  get isReady(): boolean {
    return this.grammar !== null || this.error !== null;
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

/** One step's bitmask: row i constrains request reqIds[i]. */
export interface GrammarBitmask {
  reqIds: string[];
  /** [reqIds.length, ceil(vocab/32)] int32; bit t%32 of word t/32 set = token t allowed. */
  bitmask: Int32Array;
}

export class StructuredOutputManager {
  private backend: XgrammarBackend | null = null;
  /** Compiled grammars by kind/whitespace/spec (the tokenizer is fixed per manager). */
  private readonly cache = new Map<string, CompiledGrammar>();
  private readonly pending: ConstrainedRequest[] = [];
  private readonly reasoningEnd: ReadonlySet<number> | null;
  numCompiles = 0;

  constructor(readonly opts: StructuredOutputManagerOptions) {
    this.reasoningEnd = opts.reasoningEndTokenIds?.length ? new Set(opts.reasoningEndTokenIds) : null;
  }

  /** Attaches the request's structured-output state and queues its compile (vLLM's grammar_init). */
  grammarInit(req: ConstrainedRequest, params: StructuredOutputsParams): void {
    req.structuredOutputRequest = new StructuredOutputRequest(params, this.reasoningEnd !== null && !this.promptEndsReasoning(req.promptTokenIds));
    const compiled = this.cache.get(cacheKey(req.structuredOutputRequest.spec));
    if (compiled !== undefined) this.attachMatcher(req, compiled);
    else this.pending.push(req);
  }

  /**
   * vLLM's is_reasoning_end on the prompt: the template closed the think block
   * itself (e.g. Qwen3 with enable_thinking false), so the grammar applies at once.
   */
  private promptEndsReasoning(prompt: readonly number[]): boolean {
    const last = (ids: ReadonlySet<number>) => {
      for (let i = prompt.length - 1; i >= 0; i--) if (ids.has(prompt[i]!)) return i;
      return -1;
    };
    const end = last(this.reasoningEnd!);
    return end >= 0 && end > last(new Set(this.opts.reasoningStartTokenIds ?? []));
  }

  get numPending(): number {
    return this.pending.length;
  }

  /** Compiles up to `max` queued grammars (the first call also builds the tokenizer's vocabulary). */
  runPendingCompiles(max = 1): number {
    let done = 0;
    while (done < max && this.pending.length > 0) {
      const req = this.pending.shift()!;
      const sor = req.structuredOutputRequest;
      if (sor === null || sor.isReady) continue;
      const key = cacheKey(sor.spec);
      let compiled = this.cache.get(key);
      if (compiled === undefined) {
        const t0 = performance.now();
        try {
          compiled = this.getBackend().compile(sor.spec);
        } catch (e) {
          sor.error = (e as Error).message;
          logger.error(`request ${req.requestId}: ${sor.error}`);
          done++;
          continue;
        }
        this.cache.set(key, compiled);
        this.numCompiles++;
        logger.debug(`compiled a ${sor.spec.kind} grammar in ${(performance.now() - t0).toFixed(1)} ms`);
        done++;
      }
      this.attachMatcher(req, compiled);
    }
    return done;
  }

  private getBackend(): XgrammarBackend {
    if (this.backend === null) {
      const t0 = performance.now();
      const vocab = readTokenizerVocab(this.opts.tokenizerDir);
      const size = Math.max(this.opts.vocabSize, vocab.encoded.length);
      this.backend = new XgrammarBackend(vocab, size, []);
      logger.info(`xgrammar vocabulary of ${vocab.encoded.length} tokens (${vocab.vocabType}) ready in ${(performance.now() - t0).toFixed(0)} ms`);
    }
    return this.backend;
  }

  private attachMatcher(req: ConstrainedRequest, compiled: CompiledGrammar): void {
    const sor = req.structuredOutputRequest!;
    sor.grammar = this.getBackend().matcher(compiled, req.eosTokenIds);
    // A request that comes back (e.g. after a restart of its state) replays its outputs.
    if (req.outputTokenIds.length > 0) this.acceptTokens(req, req.outputTokenIds);
  }

  /** True when this step's sample of `req` is constrained. */
  shouldMask(req: ConstrainedRequest): boolean {
    const sor = req.structuredOutputRequest;
    return sor !== null && sor.grammar !== null && sor.reasoningEnded && !sor.grammar.isTerminated();
  }

  /**
   * The bitmask for the requests that sample this step (in their order), or null when
   * none is constrained. Each matcher first catches up with (or rolls back to) its
   * request's output tokens.
   */
  grammarBitmask(reqs: readonly ConstrainedRequest[]): GrammarBitmask | null {
    const masked = reqs.filter((r) => this.shouldMask(r));
    if (masked.length === 0) return null;
    const W = bitmaskWidth(this.getBackend().vocabSize);
    const bitmask = new Int32Array(masked.length * W);
    masked.forEach((r, i) => r.structuredOutputRequest!.grammar!.fillBitmask(bitmask, i));
    return { reqIds: masked.map((r) => r.requestId), bitmask };
  }

  /**
   * Advances the request's matcher over newly accepted output tokens (vLLM's
   * accept_tokens); false when the grammar rejects one (the request is then ended).
   * Before the reasoning ends, tokens only watch for its end.
   */
  acceptTokens(req: ConstrainedRequest, tokens: readonly number[]): boolean {
    const sor = req.structuredOutputRequest;
    if (sor === null || sor.grammar === null) return true;
    let start = 0;
    if (!sor.reasoningEnded) {
      const end = tokens.findIndex((t) => this.reasoningEnd!.has(t));
      if (end < 0) return true;
      sor.reasoningEnded = true;
      start = end + 1;
    }
    if (sor.grammar.isTerminated()) return true;
    const ok = sor.grammar.acceptTokens(start === 0 ? tokens : tokens.slice(start));
    // Only possible when a row was sampled unmasked (e.g. every logit masked): the output may then leave the grammar.
    if (!ok) logger.warn(`request ${req.requestId}: the grammar rejected a sampled token (${tokens.join(', ')})`);
    return ok;
  }

  /** Rolls the matcher back by `n` accepted tokens (outputs dropped by a recompute). */
  rollBack(req: ConstrainedRequest, n: number): void {
    req.structuredOutputRequest?.grammar?.rollBack(n);
  }

  /** Frees the request's matcher. */
  release(req: ConstrainedRequest): void {
    req.structuredOutputRequest?.grammar?.dispose();
    if (req.structuredOutputRequest) req.structuredOutputRequest.grammar = null;
    const i = this.pending.indexOf(req);
    if (i >= 0) this.pending.splice(i, 1);
  }
}

function cacheKey(spec: GrammarSpec): string {
  return `${spec.kind}\u0000${spec.anyWhitespace ? 1 : 0}\u0000${spec.spec}`;
}
