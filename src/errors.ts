// Typed errors of the engine, in vLLM's / OpenAI's terms. The server turns any of
// them into {"error": {message, type, param, code}} with `status` as HTTP status.

export class VllmError extends Error {
  /** HTTP status the server answers with. */
  readonly status: number;
  /** OpenAI error type, e.g. 'BadRequestError'. */
  readonly type: string;
  /** The request field at fault (snake_case as in the HTTP API), if any. */
  readonly param: string | null;

  constructor(message: string, opts: { status?: number; type?: string; param?: string | null } = {}) {
    super(message);
    this.name = new.target.name;
    this.status = opts.status ?? 400;
    this.type = opts.type ?? 'BadRequestError';
    this.param = opts.param ?? null;
  }
}

/** A request that can never be served as given (too long, empty, bad token ids...). 400. */
export class InvalidRequestError extends VllmError {
  constructor(message: string, param: string | null = null) {
    super(message, { status: 400, type: 'BadRequestError', param });
  }
}

/** Unknown model name. 404. */
export class NotFoundError extends VllmError {
  constructor(message: string, param: string | null = 'model') {
    super(message, { status: 404, type: 'NotFoundError', param });
  }
}

/** The engine cannot take more work now (waiting queue full, shutting down). 503. */
export class EngineOverloadedError extends VllmError {
  constructor(message: string) {
    super(message, { status: 503, type: 'ServiceUnavailableError' });
  }
}

/** The engine core died or failed a step; in-flight requests fail with this. 500. */
export class EngineDeadError extends VllmError {
  constructor(message: string) {
    super(message, { status: 500, type: 'InternalServerError' });
  }
}
