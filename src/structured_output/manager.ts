// vLLM V1's StructuredOutputManager on the engine-core thread. The xgrammar work
// (compiles with their cache, the matchers, bitmask fills, accepts and rollbacks)
// runs on a grammar thread of its own (grammar_thread.ts), spawned on the first
// constrained request; this side only posts it messages and reads its results:
//
// - grammarInit posts the request's grammar; the request waits in WAITING_FOR_FSM
//   until the thread's 'ready' notice arrives. Notices are read without blocking
//   (receiveMessageOnPort) at the start of every schedule(), so unconstrained and
//   already running constrained requests keep stepping while a grammar compiles.
// - grammarBitmask (called by schedule()) posts the step's fill; the thread writes
//   the rows into shared memory while the model's forward runs, and the runner
//   waits for them (awaitGrammarBitmask, Atomics.wait) just before sampling.
// - acceptTokens / rollBack / release are queued and posted, with the inits and the
//   next fill, in one message at the end of the next schedule(): the thread applies
//   them in order before the fill (accepts packed in typed arrays: 4x cheaper to post
//   than one object per request).
//
// NOTE: the WebAssembly build has no threads and cannot serialize a compiled grammar,
// so one thread does both compiles and fills; it serves fills before it starts a
// queued compile, but a compile already running delays the step's fill by up to
// that one compile (tens to hundreds of ms with a 128k vocabulary).
import { MessageChannel, type MessagePort, receiveMessageOnPort, type Worker } from 'node:worker_threads';
import { initLogger } from '../logger.js';
import { spawnModuleWorker } from '../spawn_worker.js';
import {
  CTL_BYTES, CTL_DEAD, CTL_FILL_DONE, CTL_WORDS, CTL_NOTICES, ctlStats, type FromGrammarMessage, type GrammarThreadData,
  STAT_FILL_MS, STAT_WAIT_MS, type ToGrammarMessage,
} from './grammar_protocol.js';
import type { StructuredOutputsParams } from './params.js';
import { promptEndsReasoning } from './reasoning_end.js';
import {
  type ConstrainedRequest, type GrammarBitmask, type GrammarStats, type StructuredOutputManagerOptions, StructuredOutputRequest,
} from './request.js';

const logger = initLogger('structured_output');

/** How long the engine sleeps at most when only compiling requests are left (then it steps again). */
const IDLE_WAIT_MS = 20;

function newCtl(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(CTL_BYTES), 0, CTL_WORDS);
}

export class StructuredOutputManager {
  private thread: Worker | null = null;
  private port: MessagePort | null = null;
  private ctl = newCtl();
  private outbox: ToGrammarMessage[] = [];
  /** Accepts since the last other message, packed into one 'accepts' message when sealed. */
  private accepts: { ids: string[]; counts: number[]; tokens: number[]; rollbacks: number[] } | null = null;
  /** Requests whose grammar is in the thread, by id (the notices name them). */
  private readonly live = new Map<string, ConstrainedRequest>();
  /** Keys the thread has compiled: a request with one is ready at once (its init is served before any fill). */
  private readonly compiledKeys = new Set<string>();
  private readonly failed: string[] = [];
  private readonly reasoningEnd: ReadonlySet<number> | null;
  private width = 0;
  private buffer: SharedArrayBuffer | null = null;
  private bufferSent = false;
  private seq = 0;
  private closed = false;
  private pending = 0;
  numCompiles = 0;

  constructor(readonly opts: StructuredOutputManagerOptions) {
    this.reasoningEnd = opts.reasoningEndTokenIds?.length ? new Set(opts.reasoningEndTokenIds) : null;
  }

  /** Attaches the request's structured-output state and posts its grammar to the thread (vLLM's grammar_init). */
  grammarInit(req: ConstrainedRequest, params: StructuredOutputsParams): void {
    const sor = new StructuredOutputRequest(params, this.reasoningEnd !== null && !this.promptEndsReasoning(req.promptTokenIds));
    req.structuredOutputRequest = sor;
    this.live.set(req.requestId, req);
    if (this.compiledKeys.has(sor.key)) sor.status = 'ready';
    else this.pending++;
    if (this.closed) return this.markFailed(req, 'the engine is shutting down');
    this.ensureThread();
    this.send({ type: 'init', id: req.requestId, spec: sor.spec, eos: [...req.eosTokenIds] });
  }

  /** The template closed the think block itself (e.g. Qwen3 with enable_thinking false): the grammar applies at once. */
  private promptEndsReasoning(prompt: readonly number[]): boolean {
    return promptEndsReasoning(prompt, { start: this.opts.reasoningStartTokenIds ?? [], end: [...this.reasoningEnd!] });
  }

  /** Requests whose grammar is still compiling. */
  get numPending(): number {
    return this.pending;
  }

  private ensureThread(): void {
    if (this.thread !== null) return;
    const { port1, port2 } = new MessageChannel();
    const workerData: GrammarThreadData = { tokenizerDir: this.opts.tokenizerDir, vocabSize: this.opts.vocabSize, port: port2, ctl: this.ctl.buffer as SharedArrayBuffer };
    const thread = spawnModuleWorker(import.meta.url, 'grammar_thread', { workerData, transferList: [port2] });
    // The engine never waits on the thread's exit; a thread that stops fails the grammars it held.
    thread.unref();
    thread.on('error', (e) => this.onDead(thread, `the grammar thread failed: ${e.message}`));
    thread.on('exit', (code) => this.onDead(thread, `the grammar thread exited (code ${code})`));
    this.thread = thread;
    this.port = port1;
  }

  private send(m: ToGrammarMessage): void {
    this.seal();
    this.outbox.push(m);
  }

  /** The accepts queued so far become one message (typed arrays: cheap to post), in their place in the order. */
  private seal(): void {
    const a = this.accepts;
    if (a === null) return;
    this.accepts = null;
    this.outbox.push({ type: 'accepts', ids: a.ids, counts: Int32Array.from(a.counts), tokens: Int32Array.from(a.tokens), rollbacks: Int32Array.from(a.rollbacks) });
  }

  private queueAccept(id: string, tokens: readonly number[], rollback: number): void {
    const a = (this.accepts ??= { ids: [], counts: [], tokens: [], rollbacks: [] });
    const last = a.ids.length - 1;
    if (rollback === 0 && last >= 0 && a.ids[last] === id) a.counts[last]! += tokens.length;
    else {
      a.ids.push(id);
      a.counts.push(tokens.length);
      a.rollbacks.push(rollback);
    }
    a.tokens.push(...tokens);
  }

  /** Posts what is queued, in order, as one message (schedule() calls it once per step). */
  flush(): void {
    this.seal();
    if (this.outbox.length === 0 || this.port === null) return;
    this.port.postMessage(this.outbox);
    this.outbox = [];
  }

  /** Takes the thread's notices without blocking; returns how many. */
  pollNotices(): number {
    const port = this.port;
    if (port === null) return 0;
    let n = 0;
    // A fatal notice replaces the thread (and port): stop reading the old one then.
    for (let m = receiveMessageOnPort(port); m !== undefined; m = this.port === port ? receiveMessageOnPort(port) : undefined) {
      this.onNotice(m.message as FromGrammarMessage);
      n++;
    }
    if (Atomics.load(this.ctl, CTL_DEAD) === 1) this.onDead(this.thread, 'the grammar thread stopped');
    return n;
  }

  private onNotice(m: FromGrammarMessage): void {
    switch (m.type) {
      case 'started':
        this.width = Math.ceil(m.vocabSize / 32);
        break;
      case 'ready': {
        this.compiledKeys.add(m.key);
        if (m.compiled) {
          this.numCompiles++;
          logger.debug(`compiled a grammar in ${m.ms.toFixed(1)} ms`);
        }
        const sor = this.live.get(m.id)?.structuredOutputRequest;
        if (sor?.status === 'compiling') {
          sor.status = 'ready';
          this.pending--;
        }
        break;
      }
      case 'failed': {
        const req = this.live.get(m.id);
        if (req !== undefined) this.markFailed(req, m.error);
        break;
      }
      case 'rejected':
        // Only possible when a row was sampled unmasked (e.g. every logit masked): the output may then leave the grammar.
        logger.warn(`request ${m.id}: the grammar rejected a sampled token (${m.tokens.join(', ')})`);
        break;
      case 'fatal':
        this.onDead(this.thread, `the grammar thread stopped: ${m.error}`);
        break;
    }
  }

  private markFailed(req: ConstrainedRequest, error: string): void {
    const sor = req.structuredOutputRequest!;
    if (sor.status === 'failed') return;
    if (sor.status === 'compiling' && this.live.has(req.requestId)) this.pending--;
    sor.status = 'failed';
    sor.error = error;
    logger.error(`request ${req.requestId}: structured output grammar failed: ${error}`);
    this.failed.push(req.requestId);
  }

  /**
   * The thread is gone: every grammar it held fails (those requests are finished,
   * the others go on); the next constrained request starts a new thread.
   */
  private onDead(thread: Worker | null, why: string): void {
    if (thread === null || thread !== this.thread) return; // an old thread's late event
    for (const req of this.live.values()) this.markFailed(req, why);
    Atomics.store(this.ctl, CTL_DEAD, 1); // a fill in flight ends at once (its rows allow everything)
    Atomics.notify(this.ctl, CTL_FILL_DONE);
    void thread.terminate();
    this.thread = null;
    this.port = null;
    this.ctl = newCtl(); // fills in flight keep the old one, which says dead
    this.outbox = [];
    this.accepts = null;
    this.compiledKeys.clear();
    this.width = 0;
    this.buffer = null;
  }

  /** Ids of requests whose grammar failed since the last call: the scheduler finishes them. */
  takeFailed(): string[] {
    return this.failed.splice(0);
  }

  /**
   * Blocks until a notice arrives or `timeoutMs` passes (the engine has nothing
   * else to do: only compiling requests are left), then takes the notices.
   */
  waitForNotice(timeoutMs = IDLE_WAIT_MS): number {
    this.flush();
    const seen = Atomics.load(this.ctl, CTL_NOTICES);
    const n = this.pollNotices();
    if (n > 0 || this.thread === null) return n;
    Atomics.wait(this.ctl, CTL_NOTICES, seen, timeoutMs);
    return this.pollNotices();
  }

  /** Waits until no grammar is compiling (tests, warm-ups); throws after `timeoutMs`. */
  waitForCompiles(timeoutMs = 120_000): void {
    const end = performance.now() + timeoutMs;
    this.pollNotices();
    while (this.pending > 0) {
      if (performance.now() > end) throw new Error(`${this.pending} grammars still compiling after ${timeoutMs} ms`);
      this.waitForNotice(100);
    }
  }

  /** True when this step's sample of `req` is constrained. */
  shouldMask(req: ConstrainedRequest): boolean {
    const sor = req.structuredOutputRequest;
    return sor !== null && sor.status === 'ready' && sor.reasoningEnded && !sor.terminated;
  }

  /**
   * Posts the fill of the step's bitmask for the requests that sample this step (in
   * their order) and returns its handle, or null when none is constrained.
   */
  grammarBitmask(reqs: readonly ConstrainedRequest[]): GrammarBitmask | null {
    const masked = reqs.filter((r) => this.shouldMask(r));
    if (masked.length === 0) return null;
    if (this.width === 0) throw new Error('structured outputs: a grammar is ready before the grammar thread reported its vocabulary');
    const words = masked.length * this.width;
    if (this.buffer === null || this.buffer.byteLength < words * 4) {
      // Room for twice the rows, so that the buffer is seldom replaced.
      this.buffer = new SharedArrayBuffer(words * 8);
      this.bufferSent = false;
    }
    const seq = ++this.seq;
    const ids = masked.map((r) => r.requestId);
    this.send({ type: 'fill', seq, ids, ...(this.bufferSent ? {} : { buffer: this.buffer }) });
    this.bufferSent = true;
    this.flush();
    return { reqIds: ids, bitmask: new Int32Array(this.buffer, 0, words), ctl: this.ctl, seq };
  }

  /**
   * Queues the advance of the request's matcher over newly accepted output tokens
   * (vLLM's accept_tokens). Before the reasoning ends, tokens only watch for its end.
   */
  acceptTokens(req: ConstrainedRequest, tokens: readonly number[]): void {
    const sor = req.structuredOutputRequest;
    if (sor === null || sor.status !== 'ready') return;
    let start = 0;
    if (!sor.reasoningEnded) {
      const end = tokens.findIndex((t) => this.reasoningEnd!.has(t));
      if (end < 0) return;
      sor.reasoningEnded = true;
      start = end + 1;
    }
    if (sor.terminated || start >= tokens.length) return;
    const accepted = tokens.slice(start);
    const stop = accepted.findIndex((t) => req.eosTokenIds.includes(t));
    // The matcher takes nothing after its stop token.
    const taken = stop < 0 ? accepted : accepted.slice(0, stop + 1);
    sor.terminated = stop >= 0;
    sor.numAccepted += taken.length;
    this.queueAccept(req.requestId, taken, 0);
  }

  /** Rolls the matcher back by `n` accepted tokens (outputs dropped after they were accepted). */
  rollBack(req: ConstrainedRequest, n: number): void {
    const sor = req.structuredOutputRequest;
    if (sor === null || sor.status !== 'ready' || n <= 0) return;
    if (n > sor.numAccepted) throw new RangeError(`grammar rollback of ${n} tokens, only ${sor.numAccepted} accepted`);
    sor.numAccepted -= n;
    sor.terminated = false; // termination is always the last accepted token
    this.queueAccept(req.requestId, [], n);
  }

  /** Frees the request's matcher (or drops its queued compile). */
  release(req: ConstrainedRequest): void {
    if (!this.live.delete(req.requestId)) return;
    if (req.structuredOutputRequest?.status === 'compiling') this.pending--;
    this.send({ type: 'release', id: req.requestId });
  }

  /** Test hook: while on, the thread starts no compile (fills and accepts are still served). */
  holdCompiles(on: boolean): void {
    this.ensureThread();
    this.send({ type: 'hold', on });
    this.flush();
  }

  /** The grammar thread's counters (benchmarks). */
  get stats(): GrammarStats {
    const s = ctlStats(this.ctl);
    return { fills: this.seq, fillMs: s[STAT_FILL_MS]!, waitMs: s[STAT_WAIT_MS]! };
  }

  /** Test hook: the grammar thread throws from its message handler (as a bug in it would). */
  crashThread(): void {
    this.send({ type: 'crash' });
    this.flush();
  }

  /** Stops the grammar thread (with the engine). */
  shutdown(): void {
    this.closed = true;
    if (this.thread === null) return;
    this.send({ type: 'shutdown' });
    this.flush();
    const t = this.thread;
    this.thread = null;
    this.port = null;
    // The thread ends once it has freed its state (it closes the channel); terminate is the fallback if it is stuck in a compile.
    setTimeout(() => void t.terminate(), 1000).unref();
  }
}
