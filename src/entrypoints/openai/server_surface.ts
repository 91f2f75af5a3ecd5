// Small pieces of vLLM's server surface that sit around the routes: --root-path,
// X-Request-Id (--enable-request-id-headers), the /load counter
// (--enable-server-load-tracking) and the /invocations dispatcher (SageMaker's
// single route).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomId } from './serving_engine.js';
import { HttpError } from './http.js';

/** The routes whose requests /load counts while they run (vLLM's load_aware_call). */
export const LOAD_TRACKED_PATHS = new Set(['/v1/completions', '/v1/chat/completions', '/v1/embeddings', '/v1/responses', '/v1/messages', '/invocations']);

/** vLLM's request id length limit (request_id field), also applied to X-Request-Id. */
const MAX_REQUEST_ID_LEN = 256;

/**
 * --root-path: the server sits behind a proxy that routes `<root>/...` to it. As with
 * FastAPI's root_path, a path under the root is served with the root taken off, and
 * a path without it is served as is.
 */
export function normalizeRootPath(root: string | undefined): string {
  if (!root) return '';
  const trimmed = root.replace(/\/+$/, '');
  return trimmed === '' ? '' : trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
}

export function stripRootPath(path: string, root: string): string {
  if (root === '') return path;
  if (path === root) return '/';
  return path.startsWith(root + '/') ? path.slice(root.length) : path;
}

/**
 * The client's X-Request-Id, checked: vLLM bases the engine's request id on it
 * (header first, then the body's request_id), so it is held to the same limit.
 */
export function headerRequestId(req: IncomingMessage): string | undefined {
  const v = req.headers['x-request-id'];
  const id = Array.isArray(v) ? v[0] : v;
  if (id === undefined || id === '') return undefined;
  if (id.length > MAX_REQUEST_ID_LEN) {
    throw new HttpError(400, 'BadRequestError', `The X-Request-Id header must be at most ${MAX_REQUEST_ID_LEN} characters, got ${id.length}`, 'X-Request-Id');
  }
  return id;
}

/** --enable-request-id-headers: every response carries X-Request-Id (the client's, else a new one). */
export function setRequestIdHeader(req: IncomingMessage, res: ServerResponse): void {
  const v = req.headers['x-request-id'];
  const id = (Array.isArray(v) ? v[0] : v) || randomId();
  res.setHeader('x-request-id', id.length > MAX_REQUEST_ID_LEN ? id.slice(0, MAX_REQUEST_ID_LEN) : id);
}

/** GET /load: how many tracked requests are being answered now. */
export class ServerLoad {
  private count = 0;

  constructor(readonly enabled: boolean) {}

  get value(): number {
    return this.count;
  }

  /** Counts `res` until its response is finished or the client is gone. */
  track(res: ServerResponse): void {
    if (!this.enabled) return;
    this.count++;
    res.once('close', () => this.count--);
  }
}

/** Which API an /invocations body is for, tried in vLLM's order: chat, completion, embeddings. */
export type InvocationKind = 'chat' | 'completion' | 'embedding';

export function invocationKind(body: unknown): InvocationKind {
  if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
    if ('messages' in body) return 'chat';
    if ('prompt' in body) return 'completion';
    if ('input' in body) return 'embedding';
  }
  throw new HttpError(
    400,
    'BadRequestError',
    'Cannot find suitable handler for request. Expected one of: [ChatCompletionRequest (messages), CompletionRequest (prompt), EmbeddingRequest (input)]',
  );
}
