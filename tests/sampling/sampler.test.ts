import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  argmax,
  computePromptLogprobs,
  generatorFor,
  Sampler,
  type SamplingState,
} from '../../src/model_executor/layers/sampler.js';
import { expNonPositive } from '../../src/model_executor/layers/sampling/fast_exp.js';
import { applyPenalties } from '../../src/model_executor/layers/sampling/logits_processors.js';
import { SamplingParams, type SamplingParamsInput } from '../../src/sampling_params.js';
import type { PositionLogprobs } from '../../src/core/types.js';
import { logSoftmax, normals, rng } from './reference.js';

function state(init: SamplingParamsInput, extra: Partial<SamplingState> = {}): SamplingState {
  const params = SamplingParams.create(init);
  return {
    params,
    promptTokenIds: [],
    outputTokenIds: [],
    eosTokenIds: [],
    generator: generatorFor(params),
    ...extra,
  };
}

function batch(rows: number[][]): Float32Array {
  const V = rows[0]!.length;
  const out = new Float32Array(rows.length * V);
  rows.forEach((r, i) => out.set(r, i * V));
  return out;
}

test('fast exp matches Math.exp within 1e-8 relative on x <= 0', () => {
  const rand = rng(1);
  let worst = 0;
  for (let k = 0; k < 200_000; k++) {
    const x = -rand() * (k % 2 ? 30 : 700); // normal doubles (exp(-708) is subnormal)
    const e = Math.exp(x);
    worst = Math.max(worst, Math.abs(expNonPositive(x) - e) / e);
  }
  assert.ok(worst < 1e-8, `worst relative error ${worst}`);
  assert.equal(expNonPositive(0), 1);
  assert.equal(expNonPositive(-Infinity), 0);
  assert.equal(expNonPositive(-800), 0);
  assert.ok(Math.abs(expNonPositive(-720) - Math.exp(-720)) < 1e-320);
  assert.equal(expNonPositive(2), Math.exp(2));
});

test('greedy is the argmax (first index on ties) and draws nothing', () => {
  const sampler = new Sampler({ seed: 0 });
  const rows = [
    [0.1, 2.5, -1, 2.4],
    [3, 3, 1, 0],
    [-5, -4, -6, -4],
  ];
  const out = sampler.sample(batch(rows), 4, rows.map(() => state({ temperature: 0 })));
  assert.deepEqual(out.tokenIds, [1, 0, 1]);
  assert.deepEqual(out.logprobs, [null, null, null]);
  assert.equal(sampler.generator.offset, 0);
  assert.equal(argmax(Float32Array.from([-Infinity, -Infinity])), 0);
});

test('a seeded request draws the same tokens whatever the batch around it', () => {
  const V = 50;
  const steps = 30;
  const stepLogits = (step: number) => normals(rng(1000 + step), V, 1.5);
  const run = (order: 'alone' | 'mixed' | 'reversed'): Map<string, number[]> => {
    const sampler = new Sampler({ seed: order === 'mixed' ? 5 : 9 });
    const reqs = new Map<string, SamplingState>();
    const add = (id: string, init: SamplingParamsInput) => reqs.set(id, state(init));
    add('s1', { seed: 1, temperature: 1 });
    if (order !== 'alone') {
      add('u1', { temperature: 0.8 });
      add('s2', { seed: 2, temperature: 1.2, topK: 10 });
      add('g', { temperature: 0 });
      add('u2', { temperature: 1, topP: 0.9 });
    }
    const ids = [...reqs.keys()];
    if (order === 'reversed') ids.reverse();
    const tokens = new Map<string, number[]>(ids.map((id) => [id, []]));
    for (let step = 0; step < steps; step++) {
      // Requests join and leave: s1 is sometimes the only one, sometimes the last.
      const active = ids.filter((id) => id === 's1' || (step + id.length) % 3 !== 0);
      const logits = batch(active.map(() => stepLogits(step)));
      const out = sampler.sample(logits, V, active.map((id) => reqs.get(id)!));
      active.forEach((id, i) => tokens.get(id)!.push(out.tokenIds[i]!));
    }
    return tokens;
  };
  const alone = run('alone').get('s1')!;
  assert.deepEqual(run('mixed').get('s1'), alone);
  assert.deepEqual(run('reversed').get('s1'), alone);
  assert.ok(new Set(alone).size > 5, 'the seeded request really samples');
});

test('seeded streams: a generator rebuilt after a preemption continues them; other seeds differ', () => {
  const V = 30;
  const logits = normals(rng(3), V, 1);
  const sample = (st: SamplingState) => new Sampler().sample(batch([logits]), V, [st]).tokenIds[0]!;
  const st = state({ seed: 1234 });
  const first = Array.from({ length: 40 }, () => sample(st));
  const resumed = state({ seed: 1234 }, { generator: generatorFor(SamplingParams.create({ seed: 1234 }), 25) });
  assert.deepEqual(Array.from({ length: 15 }, () => sample(resumed)), first.slice(25));
  const other = state({ seed: 1235 });
  assert.notDeepEqual(Array.from({ length: 40 }, () => sample(other)), first);
});

test('unseeded requests are reproducible for the same engine seed', () => {
  const V = 30;
  const rows = Array.from({ length: 8 }, (_, i) => normals(rng(i), V, 2));
  const draw = (seed: number) => {
    const s = new Sampler({ seed });
    return [0, 1, 2].flatMap(() => s.sample(batch(rows), V, rows.map(() => state({ temperature: 1 }))).tokenIds);
  };
  assert.deepEqual(draw(0), draw(0));
  assert.notDeepEqual(draw(0), draw(1));
});

test('a seeded request without its generator is refused', () => {
  const st = state({ seed: 3 }, { generator: null });
  assert.throws(() => new Sampler().sample(new Float32Array(4), 4, [st]), /without its generator/);
});

test('allowedTokenIds: only those tokens can come out', () => {
  const V = 20;
  const logits = normals(rng(8), V, 2);
  const allowed = [3, 7, 11];
  const best = allowed.reduce((a, b) => (logits[b]! > logits[a]! ? b : a));
  const sampler = new Sampler();
  assert.equal(sampler.sample(batch([logits]), V, [state({ temperature: 0, allowedTokenIds: allowed })]).tokenIds[0], best);
  const reqs = Array.from({ length: 500 }, () => state({ temperature: 2, allowedTokenIds: allowed }));
  const seen = new Set(sampler.sample(batch(reqs.map(() => logits)), V, reqs).tokenIds);
  assert.deepEqual([...seen].sort((a, b) => a - b), allowed);
});

test('logitBias adds to the logits before sampling', () => {
  const logits = [1, 2, 3, 4];
  const s = new Sampler();
  assert.equal(s.sample(batch([logits]), 4, [state({ temperature: 0, logitBias: { 0: 3.5 } })]).tokenIds[0], 0);
  assert.equal(s.sample(batch([logits]), 4, [state({ temperature: 0, logitBias: { 0: 2.5 } })]).tokenIds[0], 3);
  assert.equal(s.sample(batch([logits]), 4, [state({ temperature: 0, logitBias: { 3: -2.5, 2: -2.5 } })]).tokenIds[0], 1);
  const reqs = Array.from({ length: 300 }, () => state({ temperature: 1, logitBias: { 3: -100 } }));
  assert.ok(!s.sample(batch(reqs.map(() => logits)), 4, reqs).tokenIds.includes(3));
});

test('minTokens masks EOS and the stop token ids until enough tokens came out', () => {
  const logits = [0, 5, 4, 1, 3]; // EOS = 1 is the best, stop id 2 the next
  const s = new Sampler();
  const at = (n: number, init: SamplingParamsInput = { temperature: 0, minTokens: 3, stopTokenIds: [2] }) =>
    s.sample(batch([logits]), 5, [state(init, { eosTokenIds: [1], outputTokenIds: new Array(n).fill(0) })]).tokenIds[0];
  assert.equal(at(0), 4);
  assert.equal(at(2), 4);
  assert.equal(at(3), 1);
  assert.equal(at(0, { temperature: 0, minTokens: 3 }), 2);
  assert.equal(s.sample(batch([logits]), 5, [state({ temperature: 0, minTokens: 2 }, { eosTokenIds: [1], stopTokenIds: [4, 2] })]).tokenIds[0], 3);
});

/** Hand-written penalties, straight from the definitions. */
function refPenalties(logits: number[], rep: number, freq: number, pres: number, prompt: number[], output: number[]): number[] {
  return logits.map((l, t) => {
    let v = l;
    if (prompt.includes(t) || output.includes(t)) v = v > 0 ? v / rep : v * rep;
    const count = output.filter((o) => o === t).length;
    v -= freq * count;
    if (count > 0) v -= pres;
    return v;
  });
}

test('penalties match the reference (repetition over prompt and output; frequency and presence over output)', () => {
  const rand = rng(21);
  for (const [rep, freq, pres] of [[1.3, 0, 0], [0.7, 0, 0], [1, 0.5, 0], [1, 0, -0.8], [1.2, 0.3, 0.4], [1, -1.5, 2]]) {
    const V = 40;
    const logits = normals(rand, V, 2);
    const prompt = Array.from({ length: 15 }, () => Math.floor(rand() * V));
    const output = Array.from({ length: 25 }, () => Math.floor(rand() * V));
    const row = Float32Array.from(logits);
    applyPenalties(row, { repetitionPenalty: rep!, frequencyPenalty: freq!, presencePenalty: pres! }, prompt, output);
    const want = refPenalties(logits, rep!, freq!, pres!, prompt, output);
    want.forEach((w, t) => assert.ok(Math.abs(row[t]! - w) < 1e-5, `token ${t}: ${row[t]} vs ${w}`));
    const init = { temperature: 0, repetitionPenalty: rep, frequencyPenalty: freq, presencePenalty: pres };
    const got = new Sampler().sample(Float32Array.from(logits), V, [state(init, { promptTokenIds: prompt, outputTokenIds: output })]);
    assert.equal(got.tokenIds[0], want.indexOf(Math.max(...want)));
  }
});

function checkLogprobs(lp: PositionLogprobs, raw: number[], token: number, n: number): void {
  const ref = logSoftmax(raw);
  const order = ref.map((_, i) => i).sort((a, b) => ref[b]! - ref[a]! || a - b);
  const count = n === -1 ? raw.length : n;
  assert.equal(lp.tokenIds.length, count + 1);
  assert.equal(lp.tokenIds[0], token);
  assert.ok(Math.abs(lp.logprobs[0]! - ref[token]!) < 1e-5);
  for (let j = 0; j < count; j++) {
    assert.ok(Math.abs(lp.logprobs[j + 1]! - ref[lp.tokenIds[j + 1]!]!) < 1e-5);
    assert.ok(Math.abs(ref[lp.tokenIds[j + 1]!]! - ref[order[j]!]!) < 1e-12, `top ${j}`);
  }
  assert.equal(lp.rank, 1 + ref.filter((x) => x > ref[token]!).length);
}

test('logprobs come from the raw logits: top-n sorted, the sampled token first, its rank', () => {
  const V = 64;
  const rand = rng(5);
  const s = new Sampler({ seed: 3 });
  const cases: SamplingParamsInput[] = [
    { temperature: 0, logprobs: 5 },
    { temperature: 0, logprobs: 0 },
    { temperature: 0.7, logprobs: 3, topK: 20 },
    { temperature: 1.5, logprobs: -1 },
    { temperature: 0, logprobs: 4, logitBias: { 17: 50 } }, // sampled 17 although raw rank is low
    { temperature: 1, logprobs: 2, repetitionPenalty: 1.5, presencePenalty: 1 },
  ];
  for (const init of cases) {
    const raw = normals(rand, V, 2);
    raw[9] = raw[10]!; // a tie
    const st = state(init, { promptTokenIds: [1, 2, 3], outputTokenIds: [4, 4, 5] });
    const out = s.sample(Float32Array.from(raw), V, [st]);
    checkLogprobs(out.logprobs[0]!, raw, out.tokenIds[0]!, init.logprobs as number);
    if (init.logitBias) assert.equal(out.tokenIds[0], 17);
  }
  // A rank counts only strictly larger logprobs: ties share the better rank.
  const tied = [1, 3, 3, 0];
  const lp = s.sample(batch([tied]), 4, [state({ temperature: 0, logprobs: 1, logitBias: { 2: 0.1 } })]).logprobs[0]!;
  assert.equal(lp.tokenIds[0], 2);
  assert.equal(lp.rank, 1);
  assert.deepEqual(lp.tokenIds, [2, 1]);
});

test('computePromptLogprobs: each row scores the next prompt token', () => {
  const V = 32;
  const rows = Array.from({ length: 6 }, (_, i) => normals(rng(50 + i), V, 3));
  const next = [4, 0, 31, 7, 7, 12];
  const out = computePromptLogprobs(batch(rows), V, next, 3);
  assert.equal(out.length, 6);
  out.forEach((lp, i) => checkLogprobs(lp, rows[i]!, next[i]!, 3));
  assert.throws(() => computePromptLogprobs(new Float32Array(10), V, [1], 1), RangeError);
});

test('a row with every logit masked falls back to the model\'s top token', () => {
  const logits = [0.5, 2, 1];
  const out = new Sampler().sample(batch([logits]), 3, [state({ temperature: 1, allowedTokenIds: [1], minTokens: 1 }, { eosTokenIds: [1] })]);
  assert.equal(out.tokenIds[0], 1);
});

test('logits too short for the batch are refused', () => {
  assert.throws(() => new Sampler().sample(new Float32Array(5), 3, [state({}), state({})]), RangeError);
});
