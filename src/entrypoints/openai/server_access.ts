// Who may use the server and from where: the API-key check (--api-key, as a Bearer
// token or Anthropic's x-api-key) and CORS (--allowed-origins); and the turn queue
// that paces request admission so /health never waits behind a burst.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest();

export class ApiKeys {
  private readonly keyDigests: Buffer[];

  constructor(keys: string[]) {
    this.keyDigests = keys.map(sha256);
  }

  /** True when --api-key was given. */
  get configured(): boolean {
    return this.keyDigests.length > 0;
  }

  /**
   * Routes that need the API key: /v1 ones, /invocations (which vLLM leaves open: it
   * serves the same inference) and the engine view's stream (it shows every request's traffic).
   */
  needsKey(path: string): boolean {
    return path.startsWith('/v1') || path === '/invocations' || path === '/engine/events';
  }

  authorized(req: IncomingMessage): boolean {
    if (this.keyDigests.length === 0) return true;
    const header = req.headers.authorization ?? '';
    // NOTE: Anthropic's clients send the key as x-api-key.
    const xApiKey = req.headers['x-api-key'];
    const token = header.startsWith('Bearer ') ? header.slice('Bearer '.length) : typeof xApiKey === 'string' ? xApiKey : '';
    const digest = sha256(token);
    // NOTE: every key is compared, over fixed-length digests, so the time taken
    // says nothing about which key or how much of it matched.
    let ok = false;
    for (const key of this.keyDigests) ok = timingSafeEqual(key, digest) || ok;
    return ok && token !== '';
  }
}

/** Sets CORS headers for `allowedOrigins`; true when the request was a preflight that is now answered. */
export function applyCors(allowedOrigins: string[], req: IncomingMessage, res: ServerResponse): boolean {
  if (allowedOrigins.length === 0) return false;
  const origin = req.headers.origin;
  const any = allowedOrigins.includes('*');
  if (origin !== undefined && (any || allowedOrigins.includes(origin))) {
    res.setHeader('access-control-allow-origin', any ? '*' : origin);
    if (!any) res.setHeader('vary', 'Origin');
  }
  if (req.method !== 'OPTIONS' || req.headers['access-control-request-method'] === undefined) return false;
  res.writeHead(204, {
    'access-control-allow-methods': 'GET, POST, OPTIONS',
    'access-control-allow-headers': req.headers['access-control-request-headers'] ?? 'authorization, content-type',
    'access-control-max-age': '600',
    'content-length': 0,
  });
  res.end();
  return true;
}

/**
 * Hands out one turn per event-loop iteration. NOTE: a burst of requests would
 * otherwise be validated and tokenized back to back in one iteration, and a
 * /health probe arriving meanwhile would wait for all of them.
 */
export class TurnQueue {
  private readonly waiting: (() => void)[] = [];
  private scheduled = false;

  next(): Promise<void> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.waiting.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.waiting.shift()!();
      this.schedule();
    });
  }
}

