// Structured-output cost in the engine (as vLLM's benchmark_serving_structured_output,
// offline): the same batch with 0%, 50% and 100% of its requests constrained by a JSON
// schema; output tokens per second, the grammar thread's fill time, and what the grammar
// costs the engine thread (posting, and waiting for a fill that the forward did not
// hide); then the fill's round trip alone. Grammars are compiled in a warm-up run
// first (compiles are cached per schema).
// Usage: node --import tsx benchmarks/structured_output.ts [--model DIR] [--n 64] [--max-tokens 64] [--device cpu|cuda]
import { parseArgs } from 'node:util';
import { LLM } from '../src/index.js';
import type { SamplingParamsInput } from '../src/sampling_params.js';
import { awaitGrammarBitmask } from '../src/structured_output/grammar_bitmask.js';

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

// The engine thread's share of the grammar work: posting (the step's fill, the accepted
// tokens) and waiting for the fill before sampling; the fills themselves run on the
// grammar thread during the forward (manager.stats).
const manager = llm.engine.engineCore.structuredOutputManager;
let postMs = 0;
let depth = 0; // grammarBitmask calls flush: count the outer call only
for (const name of ['grammarBitmask', 'acceptTokens', 'flush'] as const) {
  const fn = manager[name].bind(manager) as (...a: unknown[]) => unknown;
  (manager as unknown as Record<string, unknown>)[name] = (...a: unknown[]) => {
    const t = performance.now();
    depth++;
    try {
      return fn(...a);
    } finally {
      if (--depth === 0) postMs += performance.now() - t;
    }
  };
}

await llm.generate(prompts.slice(0, SCHEMAS.length), params(1).slice(0, SCHEMAS.length)); // compile every schema once
const rows: Record<string, unknown>[] = [];
for (const share of [0, 0.5, 1]) {
  await llm.generate(prompts.slice(0, 4), params(share).slice(0, 4)); // warm
  postMs = 0;
  const s0 = manager.stats;
  const t0 = performance.now();
  const outs = await llm.generate(prompts, params(share));
  const secs = (performance.now() - t0) / 1000;
  const s1 = manager.stats;
  const tokens = outs.reduce((a, o) => a + o.outputs[0]!.tokenIds.length, 0);
  const engineMs = postMs + s1.waitMs - s0.waitMs;
  rows.push({ constrained: `${share * 100}%`, requests: N, outputTokens: tokens, seconds: +secs.toFixed(2), tokPerSec: +(tokens / secs).toFixed(1), reqPerSec: +(N / secs).toFixed(2),
    fills: s1.fills - s0.fills, threadFillMs: +(s1.fillMs - s0.fillMs).toFixed(1), enginePostMs: +postMs.toFixed(1), engineWaitMs: +(s1.waitMs - s0.waitMs).toFixed(1),
    engineShare: `${((engineMs / (secs * 1000)) * 100).toFixed(1)}%` });
}
console.table(rows);
console.log(JSON.stringify(rows));

// The fill's round trip with nothing to overlap it: post, then wait at once (one
// constrained row, the first schema), as the engine would with a zero-time forward.
const gm = manager;
const probe = { requestId: 'probe', promptTokenIds: [1], eosTokenIds: [0], outputTokenIds: [] as number[], structuredOutputRequest: null };
gm.grammarInit(probe, { json: SCHEMAS[0]!, disableAnyWhitespace: true });
gm.waitForCompiles();
const rtt: number[] = [];
for (let i = 0; i < 2000; i++) {
  const t = performance.now();
  awaitGrammarBitmask(gm.grammarBitmask([probe])!);
  rtt.push((performance.now() - t) * 1000);
}
gm.release(probe);
rtt.sort((a, b) => a - b);
const q = (f: number) => rtt[Math.floor(f * (rtt.length - 1))]!.toFixed(1);
console.log(JSON.stringify({ fillRoundTripUs: { p50: q(0.5), p90: q(0.9), p99: q(0.99) } }));
llm.close();
