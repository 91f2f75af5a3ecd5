// Worker threads that tokenize long texts and parse large JSON bodies off the main
// thread (the HTTP event loop): a 1 MB prompt takes the tokenizer seconds, and a
// /health probe must not wait for it. Short texts are encoded inline (microseconds,
// less than a round trip to a thread). The threads start on first use.
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { spawnModuleWorker } from '../spawn_worker.js';
import type { Tokenizer } from './tokenizer.js';

export type PoolTask =
  | { id: number; op: 'encode'; text: string; addSpecialTokens: boolean }
  | { id: number; op: 'parseJson'; bytes: Uint8Array; maxStringChars: number };

export type PoolReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; name: string; message: string; path?: string };

/** A parsed body held a string longer than the caller's limit (refused before it reaches the main thread). */
export class StringTooLongError extends Error {
  override name = 'StringTooLongError';
  constructor(readonly path: string, readonly length: number) {
    super(`'${path}' is ${length} characters long`);
  }
}

/** Texts up to this many code units are encoded on the calling thread. */
export const INLINE_ENCODE_CHARS = 4096;
/** JSON bodies up to this many bytes are parsed on the calling thread. */
export const INLINE_PARSE_BYTES = 256 * 1024;

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
}

/** The worker entry next to this file: .js from dist/, .ts under tsx (tests). */
function spawn(dir: string): Worker {
  return spawnModuleWorker(import.meta.url, 'tokenizer_worker', { workerData: { dir } });
}

export class TokenizerPool {
  private readonly slots: Slot[] = [];
  private nextId = 0;
  private closed = false;

  /**
   * @param tokenizer the main thread's copy (short texts, and the folder the threads load)
   * @param size threads (default: half the cores, 1 to 4)
   */
  constructor(
    readonly tokenizer: Tokenizer,
    readonly dir: string,
    readonly size = Math.max(1, Math.min(4, Math.floor(availableParallelism() / 2))),
  ) {}

  /** Token ids of `text`, computed off this thread when it is long. */
  encode(text: string, addSpecialTokens: boolean): Promise<number[]> {
    if (text.length <= INLINE_ENCODE_CHARS) return Promise.resolve(this.tokenizer.encode(text, { addSpecialTokens }));
    return this.submit({ id: 0, op: 'encode', text, addSpecialTokens }) as Promise<number[]>;
  }

  /**
   * JSON.parse of a UTF-8 body, off this thread when it is large. NOTE: a large
   * body's buffer is transferred (it is unusable here afterwards) when `bytes` spans
   * all of it; otherwise it is copied.
   */
  parseJson(bytes: Uint8Array, maxStringChars = Infinity): Promise<unknown> {
    if (bytes.length <= INLINE_PARSE_BYTES) {
      return Promise.resolve(JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')));
    }
    const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
    const own = whole ? bytes : new Uint8Array(bytes);
    return this.submit({ id: 0, op: 'parseJson', bytes: own, maxStringChars }, [own.buffer as ArrayBuffer]);
  }

  /** Starts the threads now (a server does, so that its first long prompt does not wait for them). */
  prestart(): void {
    while (!this.closed && this.slots.length < this.size) this.start();
  }

  close(): void {
    this.closed = true;
    for (const slot of this.slots) {
      for (const p of slot.pending.values()) p.reject(new Error('the tokenizer pool is closed'));
      void slot.worker.terminate();
    }
    this.slots.length = 0;
  }

  private submit(task: PoolTask, transfer: ArrayBuffer[] = []): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error('the tokenizer pool is closed'));
    const slot = this.pick();
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ ...task, id }, transfer);
    });
  }

  /** The least busy thread, starting one while fewer than `size` run. */
  private pick(): Slot {
    const idle = this.slots.find((s) => s.pending.size === 0);
    if (idle) return idle;
    if (this.slots.length < this.size) return this.start();
    return this.slots.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
  }

  private start(): Slot {
    const worker = spawn(this.dir);
    worker.unref();
    const slot: Slot = { worker, pending: new Map() };
    worker.on('message', (r: PoolReply) => {
      const p = slot.pending.get(r.id);
      if (!p) return;
      slot.pending.delete(r.id);
      if (r.ok) p.resolve(r.value);
      else if (r.name === 'StringTooLong') p.reject(new StringTooLongError(r.path ?? '', Number(r.message)));
      else p.reject(Object.assign(new Error(r.message), { name: r.name }));
    });
    const fail = (e: Error) => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1); // the next task starts a fresh thread
      for (const p of slot.pending.values()) p.reject(new Error(`tokenizer thread failed: ${e.message}`));
      slot.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
    this.slots.push(slot);
    return slot;
  }
}
