// The in-memory store behind `store: true`, `previous_response_id`,
// GET /v1/responses/{id} and POST /v1/responses/{id}/cancel. NOTE: bounded, with
// least-recently-used eviction (a read or a continuation counts as a use), so a
// long-running server holds at most `maxSize` responses; an evicted id answers
// 404 as an unknown one does. Nothing is persisted: a restart forgets them all.
import type { ChatMessageParam } from './protocol.js';
import type { ResponseObject } from './protocol_responses.js';

/** Responses kept when VLLM_RESPONSES_STORE_MAX_SIZE is unset. */
export const DEFAULT_RESPONSES_STORE_SIZE = 1000;

export interface StoredResponse {
  response: ResponseObject;
  /** The conversation this response answered (without `instructions`, which a continuation does not inherit). */
  history: ChatMessageParam[];
  /** Set while a background response is generating: aborts it. */
  abort: AbortController | null;
  /** Settles when the generation is over (at once for a finished response). */
  done: Promise<void>;
}

export class ResponsesStore {
  private readonly entries = new Map<string, StoredResponse>();

  constructor(readonly maxSize: number = DEFAULT_RESPONSES_STORE_SIZE) {
    if (!Number.isInteger(maxSize) || maxSize < 0) throw new Error(`responses store size must be a non-negative integer, got ${maxSize}`);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Adds or replaces `id`, evicting the least recently used entries beyond the bound (never one still generating). */
  put(id: string, entry: StoredResponse): void {
    this.entries.delete(id);
    this.entries.set(id, entry);
    for (const [key, e] of this.entries) {
      if (this.entries.size <= this.maxSize) break;
      if (e.abort === null) this.entries.delete(key);
    }
  }

  /** The entry for `id`, marked as just used; undefined when unknown or evicted. */
  get(id: string): StoredResponse | undefined {
    const e = this.entries.get(id);
    if (e === undefined) return undefined;
    this.entries.delete(id);
    this.entries.set(id, e);
    return e;
  }
}

/** The store size from the environment (VLLM_RESPONSES_STORE_MAX_SIZE), else the default. */
export function storeSizeFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.VLLM_RESPONSES_STORE_MAX_SIZE;
  if (v === undefined || v === '') return DEFAULT_RESPONSES_STORE_SIZE;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`VLLM_RESPONSES_STORE_MAX_SIZE must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}
