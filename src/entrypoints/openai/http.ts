// HTTP plumbing for the OpenAI-compatible server on node:http: reading a JSON body
// under a size limit, error bodies in OpenAI's shape, JSON and SSE replies.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { ZodError } from 'zod';
import { VllmError } from '../../errors.js';
import type { ErrorInfo } from './protocol.js';

/** An HTTP-level refusal (body too large, wrong content type, bad JSON, auth...). */
export class HttpError extends VllmError {
  constructor(status: number, type: string, message: string, param: string | null = null) {
    super(message, { status, type, param });
  }
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

/** A zod error as one sentence naming the field, in the request's own (snake_case) terms. */
export function zodErrorToHttp(err: ZodError, input: unknown): HttpError {
  const issue = err.issues[0];
  const path = issue.path.map(String).join('.');
  let message = issue.message;
  if (issue.code === 'invalid_union') {
    const expected = new Set<string>();
    for (const branch of issue.errors) {
      const first = branch[0] as { expected?: string } | undefined;
      if (first?.expected) expected.add(first.expected);
    }
    const received = typeName(valueAt(input, issue.path));
    message = `Invalid input: expected ${[...expected].join(' or ') || 'another type'}, received ${received}`;
  }
  const where = path ? `'${path}'` : 'the request body';
  return new HttpError(400, 'BadRequestError', `${where}: ${message}`, path || null);
}

/** Any error as (status, OpenAI error body). */
export function toErrorInfo(err: unknown): ErrorInfo {
  if (err instanceof VllmError) {
    return { message: err.message, type: err.type, param: err.param, code: err.status };
  }
  const e = err as { name?: string; message?: string; param?: unknown };
  if (e && (e.name === 'SamplingParamsError' || e.name === 'ChatTemplateError')) {
    const param = typeof e.param === 'string' ? snakeCase(e.param) : null;
    return { message: e.message ?? String(err), type: 'BadRequestError', param, code: 400 };
  }
  const message = e?.message ?? String(err);
  return { message: `Internal server error: ${message}`, type: 'InternalServerError', param: null, code: 500 };
}

export function snakeCase(s: string): string {
  return s.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export function sendError(res: ServerResponse, err: unknown, headers: Record<string, string> = {}): ErrorInfo {
  const info = toErrorInfo(err);
  const extra = { ...headers };
  if (info.code === 503) extra['retry-after'] = extra['retry-after'] ?? '1';
  sendJson(res, info.code, { error: info }, extra);
  return info;
}

function isJsonContentType(value: string | undefined): boolean {
  if (value === undefined) return true; // NOTE: a missing header is read as JSON (as FastAPI does); a wrong one is refused.
  const mime = value.split(';')[0].trim().toLowerCase();
  return mime === 'application/json' || (mime.startsWith('application/') && mime.endsWith('+json'));
}

/**
 * Reads and parses a JSON body: 415 for another content type, 413 past `maxBytes`,
 * 400 for bad JSON. `parse` may move the parsing of a large body off this thread.
 */
export async function readJsonBody(req: IncomingMessage, maxBytes: number,
  parse: (bytes: Uint8Array) => Promise<unknown> = async (b) => JSON.parse(Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8'))): Promise<unknown> {
  if (!isJsonContentType(req.headers['content-type'])) {
    throw new HttpError(
      415,
      'UnsupportedMediaType',
      `Unsupported content type ${JSON.stringify(req.headers['content-type'])}: send the request body as JSON with 'Content-Type: application/json'`,
    );
  }
  const tooLarge = () =>
    new HttpError(413, 'RequestEntityTooLarge', `Request body is larger than the server's limit of ${maxBytes} bytes`);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge();
  // NOTE: the body is copied chunk by chunk into one buffer of its own (sized from
  // Content-Length when given), so that a large one moves to a parsing thread
  // without another copy on this one.
  let buf = new Uint8Array(Number.isFinite(declared) && declared > 0 ? declared : 16 * 1024);
  let size = 0;
  for await (const chunk of req) {
    const c = chunk as Buffer;
    if (size + c.length > maxBytes) throw tooLarge();
    if (size + c.length > buf.length) {
      const grown = new Uint8Array(Math.min(maxBytes, Math.max(size + c.length, buf.length * 2)));
      grown.set(buf.subarray(0, size));
      buf = grown;
    }
    buf.set(c, size);
    size += c.length;
  }
  const bytes = buf.subarray(0, size);
  if (isBlank(bytes)) throw new HttpError(400, 'BadRequestError', 'The request body is empty: send a JSON object');
  try {
    return await parse(bytes);
  } catch (e) {
    if (e instanceof VllmError) throw e;
    const msg = (e as Error).message ?? String(e);
    throw new HttpError(400, 'BadRequestError', `The request body is not valid JSON: ${msg.length > 200 ? `${msg.slice(0, 200)}...` : msg}`);
  }
}

function isBlank(bytes: Uint8Array): boolean {
  for (const b of bytes) if (b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) return false;
  return true;
}

/**
 * Server-sent events, waiting for the client to drain its buffer: `data: <json>` per
 * event (chat and completion streams), or with an `event: <type>` line before it
 * (sendNamed: OpenAI's Responses stream and Anthropic's Messages stream).
 */
export class SseWriter {
  constructor(private readonly res: ServerResponse) {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.flushHeaders();
  }

  get closed(): boolean {
    return this.res.destroyed || this.res.writableEnded;
  }

  async send(data: unknown): Promise<void> {
    await this.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  }

  /** One named event; dropped when the client is gone. */
  async sendNamed(event: string, data: unknown): Promise<void> {
    await this.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  private async write(text: string): Promise<void> {
    if (this.closed) return;
    if (!this.res.write(text)) {
      await Promise.race([once(this.res, 'drain'), once(this.res, 'close')]);
    }
  }

  end(): void {
    if (!this.closed) this.res.end();
  }
}
