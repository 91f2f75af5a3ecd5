// What happens to a request body's fields before its zod schema sees it, as vLLM's
// pydantic models do it: fields vLLM knows but this server does not implement are
// refused with a 400 naming the field (never dropped: a client sending
// structured_outputs must not believe its output is constrained); other unknown
// fields are warned about once per request and ignored; numbers and booleans sent
// as strings are accepted the way pydantic's lax mode accepts them.
import type { ZodType } from 'zod';
import { InvalidRequestError } from '../../errors.js';

/** A refusal message for a field's value, or null when that value is harmless (unset, the default). */
type Refusal = (value: unknown) => string | null;

const isSet = (v: unknown) => v !== null && v !== undefined && v !== false;

const notImplemented = (what: string): Refusal => (v) =>
  isSet(v) ? `${what} is not supported by this server: the request is refused rather than run without it.` : null;

/**
 * vLLM request fields this server does not implement, checked on every route before
 * validation. The one table to edit when a feature lands: remove its fields here.
 */
export const UNSUPPORTED_FIELDS: Readonly<Record<string, Refusal>> = {
  // vLLM V1's own refusal (its processor raises the same sentence).
  best_of: (v) => (isSet(v) && Number(v) > 1 ? 'vLLM V1 does not yet support best_of.' : null),
  logits_processors: (v) => (isSet(v) ? 'vLLM V1 does not support per request user provided logits processors.' : null),
  bad_words: (v) => (Array.isArray(v) && v.length === 0 ? null : notImplemented('bad_words')(v)),
  prompt_embeds: notImplemented('prompt_embeds (prompts as embeddings)'),
  kv_transfer_params: notImplemented('kv_transfer_params (disaggregated prefill)'),
  vllm_xargs: notImplemented('vllm_xargs (custom sampling extensions)'),
  mm_processor_kwargs: notImplemented('mm_processor_kwargs (multimodal inputs)'),
  thinking_token_budget: notImplemented('thinking_token_budget'),
};

/** The most unknown field names one warning lists, and the characters shown of each. */
const MAX_WARNED_FIELDS = 16;
const MAX_FIELD_NAME = 64;

function shapeOf(schema: ZodType): Record<string, ZodType> | null {
  const def = (schema as unknown as { _zod: { def: { type: string; shape?: Record<string, ZodType> } } })._zod.def;
  return def.type === 'object' && def.shape ? def.shape : null;
}

/**
 * Refuses unsupported fields (400, `param` names the field) and returns the unknown
 * ones, as a warning line or null.
 */
export function screenFields(schema: ZodType, body: Record<string, unknown>): string | null {
  const shape = shapeOf(schema);
  const unknown: string[] = [];
  let count = 0;
  for (const key of Object.keys(body)) {
    const refusal = UNSUPPORTED_FIELDS[key];
    if (refusal !== undefined && Object.hasOwn(UNSUPPORTED_FIELDS, key)) {
      const message = refusal(body[key]);
      if (message !== null) throw new InvalidRequestError(message, key);
      continue;
    }
    if (shape === null || Object.hasOwn(shape, key)) continue;
    count++;
    if (unknown.length < MAX_WARNED_FIELDS) unknown.push(key.length > MAX_FIELD_NAME ? `${key.slice(0, MAX_FIELD_NAME)}...` : key);
  }
  if (count === 0) return null;
  const names = unknown.map((k) => JSON.stringify(k)).join(', ');
  return `The following fields were present in the request but ignored: {${names}${count > unknown.length ? `, ... (${count} in all)` : ''}}`;
}

// ---- pydantic's lax mode ----

type Def = { type: string; innerType?: ZodType; element?: ZodType; shape?: Record<string, ZodType> };
const defOf = (s: ZodType) => (s as unknown as { _zod: { def: Def } })._zod.def;
const isIntSchema = (s: ZodType) => (s as unknown as { isInt?: boolean }).isInt === true;

const TRUE = new Set(['1', 'on', 't', 'true', 'y', 'yes']);
const FALSE = new Set(['0', 'off', 'f', 'false', 'n', 'no']);
const INT_TEXT = /^\s*[+-]?\d+\s*$/;
const FLOAT_TEXT = /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i;

/** A value as pydantic's lax mode would read it for this schema (unchanged when it does not apply). */
function lax(schema: ZodType, value: unknown): unknown {
  const def = defOf(schema);
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
      return value === null || value === undefined ? value : lax(def.innerType!, value);
    case 'number': {
      const int = isIntSchema(schema);
      if (typeof value === 'boolean') return value ? 1 : 0;
      if (typeof value === 'string' && (int ? INT_TEXT : FLOAT_TEXT).test(value)) return Number(value);
      return value;
    }
    case 'boolean':
      if (typeof value === 'string') {
        const v = value.trim().toLowerCase();
        if (TRUE.has(v)) return true;
        if (FALSE.has(v)) return false;
      }
      if (value === 0 || value === 1) return value === 1;
      return value;
    case 'array':
      return Array.isArray(value) && def.element && isScalar(def.element) ? value.map((x) => lax(def.element!, x)) : value;
    default:
      return value; // strings stay strict (as pydantic's), unions are left to zod
  }
}

function isScalar(schema: ZodType): boolean {
  const def = defOf(schema);
  if (def.type === 'optional' || def.type === 'nullable' || def.type === 'default') return isScalar(def.innerType!);
  return def.type === 'number' || def.type === 'boolean';
}

/** A shallow copy of a request body with its top-level fields read as pydantic's lax mode reads them. */
export function laxBody(schema: ZodType, body: Record<string, unknown>): Record<string, unknown> {
  const shape = shapeOf(schema);
  if (shape === null) return body;
  const out: Record<string, unknown> = { ...body };
  for (const [key, field] of Object.entries(shape)) {
    if (Object.hasOwn(out, key)) out[key] = lax(field, out[key]);
  }
  return out;
}

const LONG_MIN = -(2 ** 63);
const LONG_MAX_TEXT = '9223372036854775807';
const LONG_MIN_TEXT = '-9223372036854775808';

/** vLLM bounds `seed` to a 64-bit signed integer (torch.long). */
export function checkSeed(body: Record<string, unknown>): void {
  const seed = body.seed;
  if (typeof seed !== 'number' || !Number.isFinite(seed)) return;
  // NOTE: 2^63 - 1 is not a double; the largest double below 2^63 is allowed.
  if (seed >= 2 ** 63) throw new InvalidRequestError(`'seed': Input should be less than or equal to ${LONG_MAX_TEXT}`, 'seed');
  if (seed < LONG_MIN) throw new InvalidRequestError(`'seed': Input should be greater than or equal to ${LONG_MIN_TEXT}`, 'seed');
}
