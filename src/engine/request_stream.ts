// The async iterator that AsyncLLM.generate returns for one request (vLLM's
// RequestOutputCollector): outputs that arrive faster than the consumer reads are
// merged (deltas concatenated, cumulative ones replaced), never queued without bound.
import type { CompletionOutput, RequestOutput } from '../outputs.js';

/** Appends `next` (a delta) to `prev` in place. */
export function mergeDeltaOutput(prev: RequestOutput, next: RequestOutput): void {
  for (const out of next.outputs) {
    const old = prev.outputs.find((o) => o.index === out.index);
    if (!old) {
      prev.outputs.push(out);
      continue;
    }
    mergeCompletion(old, out);
  }
  prev.finished = next.finished;
  prev.numCachedTokens = next.numCachedTokens;
  prev.metrics = next.metrics ?? prev.metrics;
  if (prev.promptLogprobs === null) prev.promptLogprobs = next.promptLogprobs;
}

function mergeCompletion(old: CompletionOutput, out: CompletionOutput): void {
  old.text += out.text;
  old.tokenIds = old.tokenIds.concat(out.tokenIds);
  if (out.logprobs) old.logprobs = (old.logprobs ?? []).concat(out.logprobs);
  old.cumulativeLogprob = out.cumulativeLogprob;
  old.finishReason = out.finishReason;
  old.stopReason = out.stopReason;
}

export class RequestStream implements AsyncGenerator<RequestOutput, void, undefined> {
  private pending: RequestOutput | null = null;
  private error: unknown = null;
  /** The consumer got the final output, an error, or stopped iterating. */
  private ended = false;
  /** No more outputs will come (finished or aborted), even if some are still pending. */
  private closed = false;
  private waiter: { resolve(r: IteratorResult<RequestOutput, void>): void; reject(e: unknown): void } | null = null;

  constructor(
    readonly requestId: string,
    /** Ids of the requests in the engine core (the children of an n > 1 request). */
    readonly engineRequestIds: string[],
    private readonly delta: boolean,
    /** Called when the consumer stops before the request finished (break, return, throw). */
    private readonly onEarlyExit: () => void,
  ) {}

  push(out: RequestOutput): void {
    if (this.closed) return;
    if (out.finished) this.closed = true;
    if (this.pending !== null && this.delta) mergeDeltaOutput(this.pending, out);
    else this.pending = out;
    this.flush();
  }

  /** Ends the stream with `err` (after any output still pending). */
  fail(err: unknown): void {
    if (this.closed) return;
    this.closed = true;
    this.error = err;
    this.flush();
  }

  /** Ends the stream without a final output (aborted through AsyncLLM.abort). */
  close(): void {
    this.closed = true;
    this.flush();
  }

  private take(): IteratorResult<RequestOutput, void> | { error: unknown } | null {
    if (this.pending !== null) {
      const value = this.pending;
      this.pending = null;
      if (value.finished) this.ended = true;
      return { value, done: false };
    }
    if (this.error !== null) {
      const error = this.error;
      this.error = null;
      this.ended = true;
      return { error };
    }
    if (this.ended || this.closed) {
      this.ended = true;
      return { value: undefined, done: true };
    }
    return null;
  }

  private flush(): void {
    if (this.waiter === null) return;
    const r = this.take();
    if (r === null) return;
    const w = this.waiter;
    this.waiter = null;
    if ('error' in r) w.reject(r.error);
    else w.resolve(r);
  }

  next(): Promise<IteratorResult<RequestOutput, void>> {
    const r = this.ended ? { value: undefined, done: true as const } : this.take();
    if (r !== null) return 'error' in r ? Promise.reject(r.error) : Promise.resolve(r);
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  async return(): Promise<IteratorResult<RequestOutput, void>> {
    this.stop();
    return { value: undefined, done: true };
  }

  async throw(e: unknown): Promise<IteratorResult<RequestOutput, void>> {
    this.stop();
    throw e;
  }

  private stop(): void {
    if (!this.ended) {
      this.ended = true;
      this.pending = null;
      if (!this.closed) {
        this.closed = true;
        this.onEarlyExit();
      }
    }
    const w = this.waiter;
    this.waiter = null;
    w?.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.stop();
  }
}
