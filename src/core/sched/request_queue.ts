// The scheduler's waiting queue (vLLM's request_queue.py). FCFS only for now:
// a priority policy would be a second RequestQueue, chosen by createRequestQueue.
import type { Request } from '../request.js';

export type SchedulingPolicy = 'fcfs';

export interface RequestQueue extends Iterable<Request> {
  readonly length: number;
  /** Enqueues at the back (a new arrival). */
  addRequest(request: Request): void;
  /** Puts at the front (a preempted request, which resumes first). */
  prependRequest(request: Request): void;
  peekRequest(): Request;
  popRequest(): Request;
  removeRequests(requests: ReadonlySet<Request>): void;
}

/** A ring-buffer deque: O(1) at both ends, O(n) removal from the middle (aborts only). */
export class FCFSRequestQueue implements RequestQueue {
  private buf: (Request | undefined)[] = new Array(16);
  private head = 0;
  private size = 0;

  get length(): number {
    return this.size;
  }

  private grow(): void {
    const old = this.buf;
    this.buf = new Array(old.length * 2);
    for (let i = 0; i < this.size; i++) this.buf[i] = old[(this.head + i) % old.length];
    this.head = 0;
  }

  addRequest(request: Request): void {
    if (this.size === this.buf.length) this.grow();
    this.buf[(this.head + this.size) % this.buf.length] = request;
    this.size++;
  }

  prependRequest(request: Request): void {
    if (this.size === this.buf.length) this.grow();
    this.head = (this.head - 1 + this.buf.length) % this.buf.length;
    this.buf[this.head] = request;
    this.size++;
  }

  peekRequest(): Request {
    if (this.size === 0) throw new Error('peekRequest on an empty waiting queue.');
    return this.buf[this.head]!;
  }

  popRequest(): Request {
    const r = this.peekRequest();
    this.buf[this.head] = undefined;
    this.head = (this.head + 1) % this.buf.length;
    this.size--;
    return r;
  }

  removeRequests(requests: ReadonlySet<Request>): void {
    if (requests.size > 0) this.removeWhere((r) => requests.has(r));
  }

  private removeWhere(pred: (r: Request) => boolean): void {
    const kept: Request[] = [];
    for (const r of this) if (!pred(r)) kept.push(r);
    if (kept.length === this.size) return;
    this.buf = new Array(Math.max(16, this.buf.length));
    this.head = 0;
    this.size = 0;
    for (const r of kept) this.addRequest(r);
  }

  *[Symbol.iterator](): Iterator<Request> {
    for (let i = 0; i < this.size; i++) yield this.buf[(this.head + i) % this.buf.length]!;
  }
}

export function createRequestQueue(policy: SchedulingPolicy = 'fcfs'): RequestQueue {
  if (policy !== 'fcfs') throw new Error(`Unknown scheduling policy '${policy as string}': only 'fcfs' is supported.`);
  return new FCFSRequestQueue();
}
