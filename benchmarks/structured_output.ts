// Structured-output cost in the engine (as vLLM's benchmark_serving_structured_output,
// offline): the same batch with 0%, 50% and 100% of its requests constrained by a JSON
// schema; output tokens per second and the share of step time the grammar takes.
// Grammars are compiled in a warm-up run first (compiles are cached per schema).
// Usage: node --import tsx benchmarks/structured_output.ts [--model DIR] [--n 64] [--max-tokens 64] [--device cpu|cuda]
import { parseArgs } from 'node:util';
import { LLM } from '../src/index.js';
import type { SamplingParamsInput } from '../src/sampling_params.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/tiny-llama-kjv' },
    n: { type: 'string', default: '64' },
    'max-tokens': { type: 'string', default: '64' },
    device: { type: 'string', default: 'auto' },
  },
});
const N = Number(values.n);
const maxTokens = Number(values['max-tokens']);

const SCHEMAS = [
  { type: 'object', properties: { name: { type: 'string', maxLength: 12 }, age: { type: 'integer', minimum: 0, maximum: 120 } }, required: ['name', 'age'] },
  { type: 'array', items: { enum: ['red', 'green', 'blue'] }, minItems: 1, maxItems: 8 },
  { type: 'object', properties: { ok: { type: 'boolean' }, tags: { type: 'array', items: { type: 'string', maxLength: 6 }, maxItems: 4 } }, required: ['ok', 'tags'] },
  { type: 'object', properties: { x: { type: 'number', minimum: -10, maximum: 10 }, y: { type: 'number', minimum: -10, maximum: 10 } }, required: ['x', 'y'] },
];

const llm = await LLM.create({ model: values.model!, device: values.device as 'auto', useTqdm: false });
const prompts = Array.from({ length: N }, (_, i) => `Request ${i}: And God said`);
const params = (share: number): SamplingParamsInput[] =>
  prompts.map((_, i) => ({
    temperature: 1,
    seed: i,
    maxTokens,
    // NOTE: unconstrained rows ignore EOS so that both kinds run for the whole budget unless their grammar ends.
    ...(i < N * share ? { structuredOutputs: { json: SCHEMAS[i % SCHEMAS.length]!, disableAnyWhitespace: true } } : { ignoreEos: true }),
  }));

// Time spent in the grammar work of each step: bitmask fills (schedule) and matcher advances (update).
const manager = llm.engine.engineCore.structuredOutputManager;
let grammarMs = 0;
for (const name of ['grammarBitmask', 'acceptTokens'] as const) {
  const fn = manager[name].bind(manager) as (...a: unknown[]) => unknown;
  (manager as unknown as Record<string, unknown>)[name] = (...a: unknown[]) => {
    const t = performance.now();
    try {
      return fn(...a);
    } finally {
      grammarMs += performance.now() - t;
    }
  };
}

await llm.generate(prompts.slice(0, SCHEMAS.length), params(1).slice(0, SCHEMAS.length)); // compile every schema once
const rows: Record<string, unknown>[] = [];
for (const share of [0, 0.5, 1]) {
  await llm.generate(prompts.slice(0, 4), params(share).slice(0, 4)); // warm
  grammarMs = 0;
  const t0 = performance.now();
  const outs = await llm.generate(prompts, params(share));
  const secs = (performance.now() - t0) / 1000;
  const tokens = outs.reduce((a, o) => a + o.outputs[0]!.tokenIds.length, 0);
  rows.push({ constrained: `${share * 100}%`, requests: N, outputTokens: tokens, seconds: +secs.toFixed(2), tokPerSec: +(tokens / secs).toFixed(1), reqPerSec: +(N / secs).toFixed(2),
    grammarMs: +grammarMs.toFixed(1), grammarShare: `${((grammarMs / (secs * 1000)) * 100).toFixed(1)}%` });
}
console.table(rows);
console.log(JSON.stringify(rows));
llm.close();
