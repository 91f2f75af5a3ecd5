// vLLM's SpeculativeConfig for the n-gram method (prompt lookup): what the user
// passes as --speculative-config '{"method": "ngram", "num_speculative_tokens": K,
// "prompt_lookup_max": 4, "prompt_lookup_min": 2}' (or, offline, the same object
// as LLM's speculativeConfig, snake_case or camelCase keys), checked once and
// resolved into the record the scheduler and the runner read.

/** The resolved configuration (every field set). */
export interface SpeculativeConfig {
  method: 'ngram';
  /** K: draft tokens proposed per request per step. */
  numSpeculativeTokens: number;
  /** Longest suffix n-gram looked up in the request's earlier tokens. */
  promptLookupMax: number;
  /** Shortest n-gram that counts as a match. */
  promptLookupMin: number;
}

/** What a user may write: vLLM's JSON keys, or their camelCase forms. */
export interface SpeculativeConfigInput {
  method?: string;
  num_speculative_tokens?: number;
  numSpeculativeTokens?: number;
  prompt_lookup_max?: number;
  promptLookupMax?: number;
  prompt_lookup_min?: number;
  promptLookupMin?: number;
}

const KEYS: Record<string, keyof SpeculativeConfig> = {
  method: 'method',
  num_speculative_tokens: 'numSpeculativeTokens',
  numSpeculativeTokens: 'numSpeculativeTokens',
  prompt_lookup_max: 'promptLookupMax',
  promptLookupMax: 'promptLookupMax',
  prompt_lookup_min: 'promptLookupMin',
  promptLookupMin: 'promptLookupMin',
};

/** vLLM's default n-gram window when neither bound is given. */
const DEFAULT_PROMPT_LOOKUP = 5;

function positiveInt(v: unknown, key: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new RangeError(`speculative_config: ${key} must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * Checks and resolves a user's speculative config (null/undefined: speculation off).
 * As vLLM: method "ngram" (or "[ngram]"); num_speculative_tokens is required; a missing
 * prompt_lookup bound takes the other's value, both missing default to 5; min <= max.
 */
export function resolveSpeculativeConfig(input: SpeculativeConfigInput | null | undefined): SpeculativeConfig | null {
  if (input === null || input === undefined) return null;
  if (typeof input !== 'object' || Array.isArray(input)) throw new TypeError('speculative_config must be a JSON object');
  const v: Partial<Record<keyof SpeculativeConfig, unknown>> = {};
  for (const [k, val] of Object.entries(input)) {
    const field = KEYS[k];
    if (field === undefined) {
      throw new RangeError(`speculative_config: unknown key '${k}' (known: method, num_speculative_tokens, prompt_lookup_max, prompt_lookup_min)`);
    }
    v[field] = val;
  }
  const method = v.method === '[ngram]' ? 'ngram' : v.method;
  if (method !== 'ngram') {
    throw new RangeError(`speculative_config: method ${JSON.stringify(v.method)} is not supported (only "ngram": prompt lookup from the request's own tokens)`);
  }
  if (v.numSpeculativeTokens === undefined) throw new RangeError('speculative_config: num_speculative_tokens is required for the ngram method');
  const k = positiveInt(v.numSpeculativeTokens, 'num_speculative_tokens');
  const rawMax = v.promptLookupMax ?? v.promptLookupMin ?? DEFAULT_PROMPT_LOOKUP;
  const rawMin = v.promptLookupMin ?? v.promptLookupMax ?? DEFAULT_PROMPT_LOOKUP;
  const max = positiveInt(rawMax, 'prompt_lookup_max');
  const min = positiveInt(rawMin, 'prompt_lookup_min');
  if (min > max) throw new RangeError(`speculative_config: prompt_lookup_min=${min} must be <= prompt_lookup_max=${max}`);
  return { method: 'ngram', numSpeculativeTokens: k, promptLookupMax: max, promptLookupMin: min };
}
