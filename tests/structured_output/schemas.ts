// Seeded random JSON schemas for the structured-output tests: nested objects,
// arrays, enums, bounded integers and numbers, required fields and $ref. Strings and
// arrays are bounded so that a random-weight model finishes within max_tokens.
export type Schema = Record<string, unknown>;

export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

const WORDS = ['alpha', 'beta', 'gamma', 'delta', 'red', 'green', 'blue', 'north', 'south', 'yes', 'no'];

export function randomSchema(r: () => number, depth = 0): Schema {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const leaf = (): Schema => {
    switch (pick(['string', 'enum', 'integer', 'number', 'boolean', 'const'] as const)) {
      case 'string':
        return { type: 'string', maxLength: 1 + Math.floor(r() * 8) };
      case 'enum':
        return { enum: [...new Set([pick(WORDS), pick(WORDS), pick(WORDS)])] };
      case 'integer': {
        const lo = Math.floor(r() * 200) - 100;
        return { type: 'integer', minimum: lo, maximum: lo + 1 + Math.floor(r() * 1000) };
      }
      case 'number': {
        const lo = Math.floor(r() * 20) - 10;
        return { type: 'number', minimum: lo, maximum: lo + 5 };
      }
      case 'boolean':
        return { type: 'boolean' };
      case 'const':
        return { const: pick(WORDS) };
    }
  };
  const object = (): Schema => {
    const n = 1 + Math.floor(r() * 3);
    const properties: Record<string, Schema> = {};
    for (let i = 0; i < n; i++) properties[`${pick(WORDS)}_${i}`] = randomSchema(r, depth + 1);
    const names = Object.keys(properties);
    return { type: 'object', properties, required: names.filter(() => r() < 0.7), additionalProperties: false };
  };
  if (depth >= 2) return leaf();
  const kind = depth === 0 ? pick(['object', 'object', 'ref', 'array'] as const) : pick(['leaf', 'leaf', 'object', 'array'] as const);
  if (kind === 'leaf') return leaf();
  if (kind === 'array') return { type: 'array', items: randomSchema(r, depth + 1), minItems: Math.floor(r() * 2), maxItems: 1 + Math.floor(r() * 3) };
  if (kind === 'ref') {
    return { type: 'object', $defs: { item: leaf() }, properties: { first: { $ref: '#/$defs/item' }, rest: { type: 'array', items: { $ref: '#/$defs/item' }, maxItems: 2 } }, required: ['first', 'rest'], additionalProperties: false };
  }
  return object();
}
