// Rewrites of a JSON schema before xgrammar sees it, where xgrammar's converter is
// looser than the schema.
//
// NOTE: xgrammar (0.1.27) bounds only the integer part of a `number`: with
// maximum 1 it accepts 1.5, with minimum -4 it accepts -4.5. A bounded number is
// therefore given to it as anyOf: the integers in the range, the negative numbers
// whose integer part k has k - 1 >= min, and the non-negative ones whose integer part
// k has k + 1 <= max. Every value it then accepts is in range; the values left out
// are the fractions in the last unit below max and in (-1, 0) (a subset, never wrong).
//
// NOTE: a string with minLength / maxLength (or a pattern) lets raw control
// characters through, which is not JSON; a length-bounded string is given to it as
// a pattern over the characters JSON allows unescaped (escapes are left out: a
// subset again).

type Schema = Record<string, unknown>;

const MAPS = ['properties', '$defs', 'definitions', 'patternProperties', 'dependentSchemas'];
const LISTS = ['anyOf', 'oneOf', 'allOf', 'prefixItems'];
const SINGLE = ['items', 'additionalProperties', 'unevaluatedProperties', 'unevaluatedItems', 'not', 'contains'];

/** Integer bounds [lo, hi] of a number node (null: unbounded on that side). */
function intBounds(s: Schema): [number | null, number | null] {
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const min = num(s.minimum);
  const xmin = num(s.exclusiveMinimum);
  const max = num(s.maximum);
  const xmax = num(s.exclusiveMaximum);
  const los = [min === null ? null : Math.ceil(min), xmin === null ? null : Math.floor(xmin) + 1].filter((v): v is number => v !== null);
  const his = [max === null ? null : Math.floor(max), xmax === null ? null : Math.ceil(xmax) - 1].filter((v): v is number => v !== null);
  return [los.length ? Math.max(...los) : null, his.length ? Math.min(...his) : null];
}

function boundedNumber(s: Schema): Schema {
  const [lo, hi] = intBounds(s);
  const rest: Schema = { ...s };
  for (const k of ['type', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum']) delete rest[k];
  const range = (a: number | null, b: number | null): Schema => ({
    ...(a !== null ? { minimum: a } : {}),
    ...(b !== null ? { maximum: b } : {}),
  });
  const branches: Schema[] = [{ type: 'integer', ...range(lo, hi) }];
  // Negative fractions: integer part k in [lo + 1, min(hi, -1)].
  const negLo = lo === null ? null : lo + 1;
  const negHi = hi === null ? -1 : Math.min(hi, -1);
  if (negLo === null || negLo <= negHi) branches.push({ type: 'number', ...range(negLo, negHi) });
  // Non-negative fractions: integer part k in [max(lo, 0), hi - 1].
  const posLo = lo === null ? 0 : Math.max(lo, 0);
  const posHi = hi === null ? null : hi - 1;
  if (posHi === null || posLo <= posHi) branches.push({ type: 'number', ...range(posLo, posHi) });
  return { ...rest, anyOf: branches };
}

function boundedString(s: Schema): Schema {
  const int = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : null);
  const min = int(s.minLength) ?? 0;
  const max = int(s.maxLength);
  const { minLength: _a, maxLength: _b, ...rest } = s;
  return { ...rest, pattern: `^[^\\x00-\\x1f"\\\\]{${min},${max ?? ''}}$` };
}

/** A copy of `schema` that xgrammar enforces exactly (see the note above). */
export function rewriteForXgrammar(schema: unknown): unknown {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) return schema;
  const s: Schema = { ...(schema as Schema) };
  for (const k of MAPS) {
    const m = s[k];
    if (m && typeof m === 'object' && !Array.isArray(m)) {
      s[k] = Object.fromEntries(Object.entries(m).map(([name, sub]) => [name, rewriteForXgrammar(sub)]));
    }
  }
  for (const k of LISTS) if (Array.isArray(s[k])) s[k] = (s[k] as unknown[]).map(rewriteForXgrammar);
  for (const k of SINGLE) if (k in s) s[k] = rewriteForXgrammar(s[k]);
  const bounded = ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'].some((k) => k in s);
  if (s.type === 'number' && bounded) return boundedNumber(s);
  if (s.type === 'string' && ('minLength' in s || 'maxLength' in s) && !('pattern' in s) && !('format' in s)) return boundedString(s);
  return s;
}
