// A request's JSON body, from the socket to the typed request: read under the size
// limit (large bodies parsed off the event loop, where a string that no prompt of
// this model could be is refused unseen), one admission turn, then vLLM's request
// validation before the zod schema.
import type { IncomingMessage } from 'node:http';
import type { ZodType } from 'zod';
import type { Logger } from '../../logger.js';
import { StringTooLongError, type TokenizerPool } from '../../tokenizer/tokenizer_pool.js';
import { HttpError, readJsonBody, zodErrorToHttp } from './http.js';
import type { PromptGuard } from './prompt_guard.js';
import { checkSeed, laxBody, screenFields } from './request_fields.js';
import type { TurnQueue } from './server_access.js';

/** Strings up to this long pass the parsing thread whatever the model (chat templates, stop strings...). */
const LONGEST_OTHER_STRING = 1 << 20;

/** What a body reader needs of a request: its socket, and its path for the warning line. */
export interface BodyCtx {
  req: IncomingMessage;
  path: string;
}

export class RequestBodies {
  constructor(
    private readonly maxBodyBytes: number,
    private readonly guard: PromptGuard,
    private readonly tokenizerPool: TokenizerPool,
    private readonly turns: TurnQueue,
    private readonly logger: Logger,
  ) {}

  /** The body as JSON, not yet validated: large ones are parsed off the event loop. */
  read(ctx: BodyCtx): Promise<unknown> {
    return readJsonBody(ctx.req, this.maxBodyBytes, (bytes) => this.parseOffLoop(bytes));
  }

  /** Read, wait for this request's admission turn, validate. */
  async parse<T>(ctx: BodyCtx, schema: ZodType<T>): Promise<T> {
    const raw = await this.read(ctx);
    await this.turns.next();
    return this.validate(ctx, schema, raw);
  }

  /**
   * vLLM's request model validation: unsupported fields refused, unknown ones warned
   * about (one line per request), lax numbers and booleans, then the zod schema.
   */
  validate<T>(ctx: BodyCtx, schema: ZodType<T>, raw: unknown): T {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      throw new HttpError(400, 'BadRequestError', `The request body must be a JSON object, got ${Array.isArray(raw) ? 'an array' : raw === null ? 'null' : typeof raw}`);
    }
    const body = laxBody(schema, raw as Record<string, unknown>);
    const warning = screenFields(schema, body);
    if (warning !== null) this.logger.warn(`${warning} (${ctx.req.method} ${ctx.path.slice(0, 100)})`);
    checkSeed(body);
    const r = schema.safeParse(body);
    if (!r.success) throw zodErrorToHttp(r.error, body);
    return r.data;
  }

  /**
   * JSON.parse off the event loop for large bodies; a string that no prompt of this
   * model could be (and that no other field needs) is refused there, unseen here.
   */
  private async parseOffLoop(bytes: Uint8Array): Promise<unknown> {
    const maxChars = Math.max(this.guard.maxPromptChars, LONGEST_OTHER_STRING);
    try {
      return await this.tokenizerPool.parseJson(bytes, maxChars);
    } catch (e) {
      if (!(e instanceof StringTooLongError)) throw e;
      throw this.guard.tooLong(e.length, e.path);
    }
  }
}
