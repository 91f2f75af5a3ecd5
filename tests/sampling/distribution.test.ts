// Sampled frequencies against the exact filtered softmax (fixed seeds: deterministic).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sampler, type SamplingState } from '../../src/model_executor/layers/sampler.js';
import { filterCandidates, SamplingScratch } from '../../src/model_executor/layers/sampling/top_k_top_p.js';
import { SamplingParams } from '../../src/sampling_params.js';
import { chiSquare, normals, refDistribution, rng, type RefParams } from './reference.js';

function drawCounts(logits: number[], params: SamplingParams, draws: number, seed: number): number[] {
  const V = logits.length;
  const sampler = new Sampler({ seed });
  const B = 2000;
  const state: SamplingState = { params, promptTokenIds: [], outputTokenIds: [], eosTokenIds: [], generator: null };
  const reqs = new Array<SamplingState>(B).fill(state);
  const batch = new Float32Array(B * V);
  const counts = new Array<number>(V).fill(0);
  for (let done = 0; done < draws; done += B) {
    for (let r = 0; r < B; r++) batch.set(logits, r * V);
    for (const t of sampler.sample(batch, V, reqs).tokenIds) counts[t]!++;
  }
  return counts;
}

const CASES: [string, Partial<RefParams>][] = [
  ['temperature 1', { temperature: 1 }],
  ['temperature 0.5', { temperature: 0.5 }],
  ['temperature 1.7', { temperature: 1.7 }],
  ['top-k 5', { temperature: 1.3, topK: 5 }],
  ['top-p 0.7', { temperature: 1, topP: 0.7 }],
  ['top-p 0.95 at temperature 0.8', { temperature: 0.8, topP: 0.95 }],
  ['min-p 0.1', { temperature: 0.9, minP: 0.1 }],
  ['top-k + top-p + min-p', { temperature: 1.2, topK: 12, topP: 0.85, minP: 0.02 }],
];

CASES.forEach(([name, partial], i) => {
  test(`distribution: ${name}`, () => {
    const p: RefParams = { temperature: 1, topK: 0, topP: 1, minP: 0, ...partial };
    const logits = normals(rng(100 + i), 40, 2);
    const probs = refDistribution(logits, p);
    const counts = drawCounts(logits, SamplingParams.create(p), 40_000, 7 + i);
    const { chi2, critical, df, impossible } = chiSquare(counts, probs);
    assert.equal(impossible, 0, 'a filtered-out token was sampled');
    assert.ok(chi2 < critical, `chi2 ${chi2.toFixed(1)} >= ${critical.toFixed(1)} (df ${df})`);
    const tv = 0.5 * probs.reduce((s, q, t) => s + Math.abs(q - counts[t]! / 40_000), 0);
    assert.ok(tv < 0.03, `total variation ${tv}`);
  });
});

test('distribution: a wrong distribution fails the check (the test has power)', () => {
  const logits = normals(rng(5), 40, 2);
  const counts = drawCounts(logits, SamplingParams.create({ temperature: 1 }), 40_000, 3);
  const wrong = refDistribution(logits, { temperature: 1.1, topK: 0, topP: 1, minP: 0 });
  const { chi2, critical } = chiSquare(counts, wrong);
  assert.ok(chi2 > critical);
});

test('top-k keeps every token tied with the k-th', () => {
  const logits = [5, 3, 3, 3, 1, 0];
  const counts = drawCounts(logits, SamplingParams.create({ topK: 2 }), 20_000, 11);
  assert.ok(counts[2]! > 0 && counts[3]! > 0);
  assert.equal(counts[4]! + counts[5]!, 0);
});

/** The support of refDistribution, as a sorted list of token ids. */
function refSupport(logits: number[], p: RefParams): number[] {
  return refDistribution(logits, p).flatMap((q, i) => (q > 0 ? [i] : []));
}

test('filterCandidates keeps exactly the reference support (large vocabularies, flat and peaked rows, ties)', () => {
  const s = new SamplingScratch();
  const rand = rng(77);
  let checked = 0;
  for (const V of [2000, 8000]) {
    for (const sd of [0.05, 1, 4]) {
      for (const p of [
        { temperature: 1, topK: 0, topP: 0.9, minP: 0 },
        { temperature: 1.5, topK: 0, topP: 0.5, minP: 0 },
        { temperature: 0.7, topK: 0, topP: 0.99, minP: 0 },
        { temperature: 1, topK: 1000, topP: 0.8, minP: 0 },
        { temperature: 1, topK: 50, topP: 1, minP: 0 },
        { temperature: 0.9, topK: 0, topP: 1, minP: 0.3 },
      ]) {
        const logits = normals(rand, V, sd);
        // Some exact ties, including around the top.
        for (let t = 0; t < 20; t++) logits[Math.floor(rand() * V)] = logits[Math.floor(rand() * V)]!;
        const row = Float32Array.from(logits);
        const { n, total } = filterCandidates(row, p, s);
        const got = Array.from(s.idx.subarray(0, n));
        const want = refSupport(logits, p);
        assert.deepEqual(got, want, `V ${V} sd ${sd} ${JSON.stringify(p)}: ${got.length} kept, want ${want.length}`);
        const m = Math.max(...logits);
        const sum = want.reduce((acc, i) => acc + Math.exp((logits[i]! - m) / p.temperature), 0);
        assert.ok(Math.abs(total - sum) <= 1e-8 * sum);
        checked++;
      }
    }
  }
  assert.equal(checked, 36);
});

test('distribution over a 1000-token vocabulary with top-p: frequencies of the kept tokens', () => {
  const V = 1000;
  const logits = normals(rng(9), V, 3);
  const p: RefParams = { temperature: 1, topK: 0, topP: 0.8, minP: 0 };
  const probs = refDistribution(logits, p);
  const counts = drawCounts(logits, SamplingParams.create(p), 20_000, 21);
  const { chi2, critical, impossible } = chiSquare(counts, probs);
  assert.equal(impossible, 0);
  assert.ok(chi2 < critical, `chi2 ${chi2} >= ${critical}`);
});
