// Entry of the grammar thread (a worker_threads worker the StructuredOutputManager
// spawns on the first constrained request). It owns the xgrammar instance: the
// tokenizer's vocabulary, the compile cache (by kind, whitespace and spec: the
// tokenizer is fixed per thread), one matcher per request; it compiles, fills the
// step's bitmask into shared memory, and advances / rolls back the matchers.
//
// NOTE on the order of work: messages are handled as they arrive (fills, accepts,
// releases at once); compiles are queued and run one at a time, each after every
// message that arrived meanwhile has been served. xgrammar's WebAssembly build
// runs a compile to its end without yielding, so a fill posted while a compile
// runs waits for that one compile (tens to hundreds of ms with a 128k vocabulary,
// docs/benchmarks.md), never for the ones queued behind it.
import { receiveMessageOnPort, workerData } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { type CompiledGrammar, XgrammarBackend, type XgrammarGrammar } from './backend_xgrammar.js';
import {
  CTL_DEAD, CTL_FILL_DONE, CTL_NOTICES, CTL_WORDS, ctlStats, STAT_FILL_MS, type FromGrammarMessage, grammarCacheKey, type GrammarThreadData,
  type ToGrammarBatch, type ToGrammarMessage,
} from './grammar_protocol.js';
import type { GrammarSpec } from './params.js';
import { readTokenizerVocab } from './vocab.js';
import { initXgrammar } from './xgrammar_loader.js';

interface QueuedCompile {
  id: string;
  spec: GrammarSpec;
  eos: number[];
}

class GrammarService {
  private readonly cache = new Map<string, CompiledGrammar>();
  private readonly matchers = new Map<string, XgrammarGrammar>();
  private readonly queue: QueuedCompile[] = [];
  private bitmask: Int32Array<ArrayBufferLike> = new Int32Array(0);
  private held = false;
  private compileScheduled = false;
  private readonly width: number;
  private readonly stats: Float64Array;
  closed = false;

  constructor(private readonly backend: XgrammarBackend, private readonly port: MessagePort, private readonly ctl: Int32Array) {
    this.width = Math.ceil(backend.vocabSize / 32);
    this.stats = ctlStats(ctl);
  }

  post(msg: FromGrammarMessage): void {
    this.port.postMessage(msg);
    Atomics.add(this.ctl, CTL_NOTICES, 1);
    Atomics.notify(this.ctl, CTL_NOTICES);
  }

  /** Serves a batch, then whatever else is already in the port, then schedules the next compile. */
  onBatch(batch: ToGrammarBatch): void {
    for (const m of batch) this.handle(m);
    this.drain();
    this.scheduleCompile();
  }

  private drain(): void {
    for (let m = receiveMessageOnPort(this.port); m !== undefined && !this.closed; m = receiveMessageOnPort(this.port)) {
      for (const msg of m.message as ToGrammarBatch) this.handle(msg);
    }
  }

  private handle(m: ToGrammarMessage): void {
    if (this.closed) return;
    switch (m.type) {
      case 'init': {
        const compiled = this.cache.get(grammarCacheKey(m.spec));
        if (compiled !== undefined) this.attach(m, compiled, false, 0);
        else this.queue.push({ id: m.id, spec: m.spec, eos: m.eos });
        break;
      }
      case 'accepts': {
        let off = 0;
        m.ids.forEach((id, i) => {
          const n = m.counts[i]!;
          this.accept(id, m.tokens.subarray(off, off + n), m.rollbacks[i]!);
          off += n;
        });
        break;
      }
      case 'fill':
        this.fill(m.seq, m.ids, m.buffer);
        break;
      case 'release': {
        this.matchers.get(m.id)?.dispose();
        this.matchers.delete(m.id);
        const i = this.queue.findIndex((q) => q.id === m.id);
        if (i >= 0) this.queue.splice(i, 1);
        break;
      }
      case 'hold':
        this.held = m.on;
        break;
      case 'crash':
        throw new Error('crash requested (test hook)');
      case 'shutdown':
        this.close();
        break;
    }
  }

  private attach(q: QueuedCompile, compiled: CompiledGrammar, didCompile: boolean, ms: number): void {
    try {
      this.matchers.set(q.id, this.backend.matcher(compiled, q.eos));
      this.post({ type: 'ready', id: q.id, key: grammarCacheKey(q.spec), compiled: didCompile, ms });
    } catch (e) {
      this.post({ type: 'failed', id: q.id, error: (e as Error).message });
    }
  }

  private accept(id: string, tokens: Int32Array, rollback: number): void {
    const m = this.matchers.get(id);
    if (m === undefined) return; // released, or failed
    try {
      if (rollback > 0) m.rollBack(rollback);
      if (tokens.length > 0 && !m.acceptTokens(tokens)) this.post({ type: 'rejected', id, tokens: Array.from(tokens) });
    } catch (e) {
      this.fail(id, e);
    }
  }

  /** Writes rows 0..ids.length-1 ([n, width] int32), then publishes `seq`. A row without a live matcher allows every token. */
  private fill(seq: number, ids: string[], buffer: SharedArrayBuffer | undefined): void {
    const t0 = performance.now();
    if (buffer !== undefined) this.bitmask = new Int32Array(buffer);
    const W = this.width;
    ids.forEach((id, row) => {
      const m = this.matchers.get(id);
      try {
        if (m !== undefined && !m.isTerminated()) return m.fillBitmask(this.bitmask, row);
      } catch (e) {
        this.fail(id, e);
      }
      this.bitmask.fill(-1, row * W, (row + 1) * W);
    });
    this.stats[STAT_FILL_MS] += performance.now() - t0;
    Atomics.store(this.ctl, CTL_FILL_DONE, seq);
    Atomics.notify(this.ctl, CTL_FILL_DONE);
  }

  private fail(id: string, e: unknown): void {
    this.matchers.get(id)?.dispose();
    this.matchers.delete(id);
    this.post({ type: 'failed', id, error: (e as Error).message ?? String(e) });
  }

  /** One compile per event-loop turn, so that the messages that came in during a compile are served first. */
  private scheduleCompile(): void {
    if (this.compileScheduled || this.held || this.closed || this.queue.length === 0) return;
    this.compileScheduled = true;
    setImmediate(() => {
      this.compileScheduled = false;
      this.drain();
      if (!this.held) this.compileNext();
      this.scheduleCompile();
    });
  }

  private compileNext(): void {
    const q = this.queue.shift();
    if (q === undefined || this.closed) return;
    const key = grammarCacheKey(q.spec);
    let compiled = this.cache.get(key);
    if (compiled !== undefined) return this.attach(q, compiled, false, 0);
    const t0 = performance.now();
    try {
      compiled = this.backend.compile(q.spec);
    } catch (e) {
      this.post({ type: 'failed', id: q.id, error: (e as Error).message });
      return;
    }
    this.cache.set(key, compiled);
    this.attach(q, compiled, true, performance.now() - t0);
    // Requests queued behind with the same grammar need no compile of their own.
    for (let i = this.queue.length - 1; i >= 0; i--) {
      if (grammarCacheKey(this.queue[i]!.spec) === key) this.attach(this.queue.splice(i, 1)[0]!, compiled, false, 0);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const m of this.matchers.values()) m.dispose();
    this.matchers.clear();
    for (const c of this.cache.values()) c.handle.delete();
    this.cache.clear();
    this.backend.dispose();
    this.port.close();
  }
}

/** Marks the thread dead for the engine (whose waits then end) and says why. */
function fatal(port: MessagePort, ctl: Int32Array, e: unknown): void {
  try {
    port.postMessage({ type: 'fatal', error: e instanceof Error ? e.message : String(e) } satisfies FromGrammarMessage);
  } finally {
    Atomics.store(ctl, CTL_DEAD, 1);
    Atomics.add(ctl, CTL_NOTICES, 1);
    Atomics.notify(ctl, CTL_NOTICES);
    Atomics.notify(ctl, CTL_FILL_DONE);
  }
}

async function main(): Promise<void> {
  const data = workerData as GrammarThreadData;
  const ctl = new Int32Array(data.ctl, 0, CTL_WORDS);
  const port = data.port;
  process.on('uncaughtException', (e) => fatal(port, ctl, e));
  let service: GrammarService;
  try {
    await initXgrammar();
    const vocab = readTokenizerVocab(data.tokenizerDir);
    const backend = new XgrammarBackend(vocab, Math.max(data.vocabSize, vocab.encoded.length), []);
    service = new GrammarService(backend, port, ctl);
    service.post({ type: 'started', vocabSize: backend.vocabSize });
  } catch (e) {
    fatal(port, ctl, e);
    port.close();
    return;
  }
  port.on('message', (batch: ToGrammarBatch) => {
    try {
      service.onBatch(batch);
    } catch (e) {
      fatal(port, ctl, e);
      service.close();
    }
  });
}

void main();
