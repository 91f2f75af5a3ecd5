// N-gram speculative decoding end to end on the trained tiny model
// (models/tiny-llama-kjv): greedy outputs identical with and without speculation
// (a mixed batch, prefix caching and chunked prefill on, and under preemption with a
// small KV cache), seeded sampling distribution-equal by a two-sample chi-square test,
// requests that get no drafts (logprobs) sharing the batch, and no leaked KV blocks.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LLM, type LLMOptions } from '../../src/index.js';
import type { SpecDecodingStats } from '../../src/core/types.js';
import type { SamplingParamsInput } from '../../src/sampling_params.js';
import { mixedPrompts } from '../helpers/prompts.js';
import { KJV_PROMPTS } from '../helpers/kjv_prompts.js';

const MODEL = 'models/tiny-llama-kjv';
const SPEC = { method: 'ngram', num_speculative_tokens: 4, prompt_lookup_max: 4, prompt_lookup_min: 2 };

interface Run {
  outs: Awaited<ReturnType<LLM['generate']>>;
  stats: SpecDecodingStats[];
  preemptions: number;
}

/** Generates on a fresh engine; collects every step's SpecDecodingStats and checks that no KV block leaked. */
async function run(opts: Partial<LLMOptions>, prompts: (string | { promptTokenIds: number[] })[], params: SamplingParamsInput | SamplingParamsInput[]): Promise<Run> {
  const llm = await LLM.create({ model: MODEL, useTqdm: false, ...opts });
  try {
    const core = llm.engine.engineCore;
    const stats: SpecDecodingStats[] = [];
    const step = core.step.bind(core);
    core.step = () => {
      const out = step();
      if (out.schedulerStats?.specDecodingStats) stats.push(out.schedulerStats.specDecodingStats);
      return out;
    };
    const outs = await llm.generate(prompts, params);
    assert.equal(core.numFreeBlocks, core.cacheConfig.numBlocks - 1, 'every KV block is free again');
    return { outs, stats, preemptions: core.scheduler.totalNumPreemptions };
  } finally {
    llm.close();
  }
}

const tokensOf = (r: Run) => r.outs.map((o) => o.outputs[0].tokenIds);
const sum = (stats: SpecDecodingStats[], f: (s: SpecDecodingStats) => number) => stats.reduce((a, s) => a + f(s), 0);

function assertVerified(r: Run, label: string): void {
  const drafted = sum(r.stats, (s) => s.numDraftTokens);
  const accepted = sum(r.stats, (s) => s.numAcceptedTokens);
  assert.ok(drafted > 0 && accepted > 0 && accepted < drafted, `${label}: ${accepted} of ${drafted} draft tokens accepted (some, not all)`);
}

// KJV verses the model knows (drafts get accepted), random token prompts (drafts mostly rejected), and a repetitive one.
const PROMPTS = [
  ...KJV_PROMPTS,
  ...mixedPrompts(12, 3, 120, 4096).map((p) => ({ promptTokenIds: p })),
  { promptTokenIds: Array.from({ length: 60 }, (_, i) => 100 + (i % 7)) },
];

test('greedy: identical tokens with and without speculation (mixed batch, prefix caching, chunked prefill, preemption)', async () => {
  const params = { temperature: 0, maxTokens: 40, ignoreEos: true };
  const base = await run({ maxModelLen: 512 }, PROMPTS, params);
  assert.equal(base.stats.length, 0);
  const spec = await run({ maxModelLen: 512, speculativeConfig: SPEC }, PROMPTS, params);
  assert.deepEqual(tokensOf(spec), tokensOf(base), 'speculative vs plain');
  assertVerified(spec, 'default budget');

  // Chunked prefill: a 24-token budget splits prompts and trims drafts; prefix caching on (the default).
  const chunked = await run({ maxModelLen: 512, maxNumBatchedTokens: 24, speculativeConfig: SPEC }, [...PROMPTS, ...PROMPTS.slice(0, 4)], params);
  assert.deepEqual(tokensOf(chunked), [...tokensOf(base), ...tokensOf(base).slice(0, 4)], 'chunked prefill, repeated prompts hit the prefix cache');
  assertVerified(chunked, 'chunked');

  // 40 blocks of 16 tokens: a few sequences at a time, so requests with drafts get preempted and recomputed.
  const blockBytes = 2 * 8 * 16 * 2 * 64 * 4;
  const small = await run({ maxModelLen: 512, kvCacheMemoryBytes: 40 * blockBytes, maxNumBatchedTokens: 64, speculativeConfig: SPEC }, PROMPTS, params);
  assert.ok(small.preemptions > 0, 'the small cache forced preemptions');
  assert.deepEqual(tokensOf(small), tokensOf(base), 'with preemptions');
  assertVerified(small, 'preemption');
});

test('requests without drafts (logprobs, structured outputs) and with penalties share a batch with drafted ones; outputs unchanged', async () => {
  const params: SamplingParamsInput[] = PROMPTS.map((_, i) =>
    i % 3 === 0 ? { temperature: 0, maxTokens: 24, ignoreEos: true, logprobs: 2 }
      : i % 3 === 1 ? { temperature: 0, maxTokens: 24, ignoreEos: true, repetitionPenalty: 1.3 }
        : { temperature: 0, maxTokens: 24, ignoreEos: true });
  // Two constrained requests (a regex, a choice): no drafts, the grammar's mask as without speculation.
  params[2] = { temperature: 0.9, seed: 3, maxTokens: 24, structuredOutputs: { regex: '[0-9]{3}-[a-z]{2,6}' } };
  params[5] = { temperature: 0, maxTokens: 10, structuredOutputs: { choice: ['light', 'darkness', 'the firmament'] } };
  const base = await run({ maxModelLen: 512 }, PROMPTS, params);
  const spec = await run({ maxModelLen: 512, speculativeConfig: SPEC }, PROMPTS, params);
  assert.deepEqual(tokensOf(spec), tokensOf(base));
  assertVerified(spec, 'mixed params');
  assert.match(spec.outs[2].outputs[0].text, /^[0-9]{3}-[a-z]{2,6}$/);
  assert.ok(['light', 'darkness', 'the firmament'].includes(spec.outs[5].outputs[0].text));
  spec.outs.forEach((o, i) => {
    if (i % 3 !== 0) return;
    const want = base.outs[i].outputs[0].logprobs!;
    const got = o.outputs[0].logprobs!;
    assert.equal(got.length, want.length);
    got.forEach((pos, t) => {
      for (const id of Object.keys(want[t])) assert.ok(Math.abs(pos[Number(id)].logprob - want[t][Number(id)].logprob) < 1e-4, `request ${i} position ${t}`);
    });
  });
});

/** Two-sample chi-square (homogeneity) of two count maps; critical value at p = 1e-6. */
function twoSample(a: Map<string, number>, b: Map<string, number>): { chi2: number; critical: number; df: number } {
  const na = [...a.values()].reduce((x, y) => x + y, 0);
  const nb = [...b.values()].reduce((x, y) => x + y, 0);
  // Pool categories expecting fewer than 5 per sample into one.
  let chi2 = 0;
  let bins = 0;
  let poolA = 0;
  let poolB = 0;
  for (const k of new Set([...a.keys(), ...b.keys()])) {
    const oa = a.get(k) ?? 0;
    const ob = b.get(k) ?? 0;
    const ea = ((oa + ob) * na) / (na + nb);
    const eb = ((oa + ob) * nb) / (na + nb);
    if (Math.min(ea, eb) < 5) {
      poolA += oa;
      poolB += ob;
      continue;
    }
    chi2 += (oa - ea) ** 2 / ea + (ob - eb) ** 2 / eb;
    bins++;
  }
  if (poolA + poolB > 0) {
    const ea = ((poolA + poolB) * na) / (na + nb);
    const eb = ((poolA + poolB) * nb) / (na + nb);
    chi2 += (poolA - ea) ** 2 / ea + (poolB - eb) ** 2 / eb;
    bins++;
  }
  const df = Math.max(1, bins - 1);
  const z = 4.753;
  return { chi2, critical: df * (1 - 2 / (9 * df) + z * Math.sqrt(2 / (9 * df))) ** 3, df };
}

test('seeded sampling: the first tokens are distribution-equal with and without speculation (chi-square)', async () => {
  // A verse the model knows, quoted twice: drafts are proposed from the second output token on.
  const prompt = KJV_PROMPTS[0];
  const N = 400;
  const sample = async (spec: boolean, seed0: number) => {
    const params = Array.from({ length: N }, (_, i) => ({ temperature: 1, topP: 0.95, seed: seed0 + i, maxTokens: 5, ignoreEos: true }));
    return run({ maxModelLen: 512, ...(spec ? { speculativeConfig: SPEC } : {}) }, new Array(N).fill(prompt), params);
  };
  // Different seeds in the two arms: independent samples of the two distributions.
  const plain = await sample(false, 1);
  const spec = await sample(true, 100_001);
  assertVerified(spec, 'seeded');
  for (const [name, key] of [
    ['tokens 1-2', (t: number[]) => t.slice(0, 2).join(',')],
    ['tokens 1-3', (t: number[]) => t.slice(0, 3).join(',')],
    ['token 4', (t: number[]) => String(t[3])],
    ['token 5', (t: number[]) => String(t[4])],
  ] as const) {
    const count = (r: Run) => {
      const m = new Map<string, number>();
      for (const t of tokensOf(r)) m.set(key(t), (m.get(key(t)) ?? 0) + 1);
      return m;
    };
    const { chi2, critical, df } = twoSample(count(plain), count(spec));
    assert.ok(chi2 < critical, `${name}: chi2 ${chi2.toFixed(1)} >= ${critical.toFixed(1)} (df ${df})`);
    assert.ok(df >= 2, `${name}: the test needs several categories, got df ${df}`);
  }
  // The check has power: the plain arm against itself at another temperature fails it.
  const hot = await run({ maxModelLen: 512 }, new Array(N).fill(prompt),
    Array.from({ length: N }, (_, i) => ({ temperature: 1.6, seed: 5000 + i, maxTokens: 3, ignoreEos: true })));
  const key = (t: number[]) => t.slice(0, 3).join(',');
  const cnt = (r: Run) => tokensOf(r).reduce((m, t) => m.set(key(t), (m.get(key(t)) ?? 0) + 1), new Map<string, number>());
  const { chi2, critical } = twoSample(cnt(plain), cnt(hot));
  assert.ok(chi2 > critical, `temperature 1.6 vs 1: chi2 ${chi2.toFixed(1)} should exceed ${critical.toFixed(1)}`);
});
