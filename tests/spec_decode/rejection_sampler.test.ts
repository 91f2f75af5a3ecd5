// The rejection sampler (src/worker/spec_decode/rejection_sampler.ts) through the real
// sampling seam (vt_sample on the CPU, the host sampler for penalty rows), against a
// brute-force reference of vLLM's rule written out with explicit probabilities: accept
// draft d with probability min(1, p(d) / q(d)) (q one-hot for an n-gram draft), on the
// first rejection draw from max(p - q, 0) normalized, after k acceptances a bonus
// token from the last row. The exact probability of every emitted sequence is
// enumerated and compared with the sampled frequencies by a chi-square test.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DType, loadNative, Tensor, Workspace } from '../../src/native/index.js';
import { SamplingParams, type SamplingParamsInput } from '../../src/sampling_params.js';
import { createSampler } from '../../src/worker/sampler.js';
import type { CachedRequestState } from '../../src/worker/input_batch.js';
import { acceptDrafts, rejectionSample } from '../../src/worker/spec_decode/rejection_sampler.js';
import { chiSquare, normals, refDistribution, rng } from '../sampling/reference.js';

const ops = loadNative('cpu');
const V = 10;

function state(params: SamplingParams, outputTokenIds: number[] = []): CachedRequestState {
  return { reqId: 'r', promptTokenIds: [1, 2], outputTokenIds, samplingParams: params, eosTokenIds: [], blockIds: [], numComputedTokens: 0 };
}

/** The model's logits row j (after the first j drafts), with the request's presence / frequency penalties over its outputs so far. */
function penalized(row: number[], p: SamplingParams, outputs: readonly number[]): number[] {
  const out = row.slice();
  const counts = new Map<number, number>();
  for (const t of outputs) counts.set(t, (counts.get(t) ?? 0) + 1);
  for (const [t, c] of counts) out[t] -= p.frequencyPenalty * c + p.presencePenalty;
  return out;
}

/** vLLM's rule, brute force: every emitted sequence with its exact probability. */
function referenceOutcomes(rows: number[][], drafts: number[], p: SamplingParams, outputs: number[]): Map<string, number> {
  const probs = rows.map((row, j) => {
    const logits = penalized(row, p, [...outputs, ...drafts.slice(0, j)]);
    if (p.temperature === 0) {
      const best = logits.indexOf(Math.max(...logits));
      return logits.map((_, t) => (t === best ? 1 : 0));
    }
    return refDistribution(logits, p);
  });
  const out = new Map<string, number>();
  let prefix = 1; // probability that drafts 0..j-1 were accepted
  for (let j = 0; j <= drafts.length && prefix > 0; j++) {
    const target = probs[j];
    if (j === drafts.length) {
      target.forEach((pt, y) => pt > 0 && out.set([...drafts, y].join(','), prefix * pt));
      break;
    }
    const q = target.map((_, t) => (t === drafts[j] ? 1 : 0)); // the n-gram draft's one-hot q
    const accept = Math.min(1, target[drafts[j]] / q[drafts[j]]);
    const residual = target.map((pt, t) => Math.max(pt - q[t], 0));
    const z = residual.reduce((a, b) => a + b, 0);
    if (z > 0) residual.forEach((r, y) => r > 0 && out.set([...drafts.slice(0, j), y].join(','), prefix * (1 - accept) * (r / z)));
    prefix *= accept;
  }
  return out;
}

/** Emitted sequences of `copies` identical requests, `rounds` times over (the engine generator advances). */
function sampleOutcomes(rows: number[][], drafts: number[], params: SamplingParams, outputs: number[], copies: number, rounds: number, seed: number): Map<string, number> {
  const sampler = createSampler(ops, DType.F32, seed);
  const ws = new Workspace(ops);
  const counts = new Map<string, number>();
  const reqs = Array.from({ length: copies }, () => state(params, outputs.slice()));
  const host = new Float32Array(copies * rows.length * V);
  for (let c = 0; c < copies; c++) rows.forEach((row, j) => host.set(row, (c * rows.length + j) * V));
  const logits = Tensor.empty(ops, [copies * rows.length, V], DType.F32);
  try {
    for (let k = 0; k < rounds; k++) {
      logits.copyFromHost(host); // the sampler may overwrite its logits
      const res = rejectionSample(sampler, ws, logits, reqs, reqs.map(() => drafts));
      for (const toks of res.tokenIds) counts.set(toks.join(','), (counts.get(toks.join(',')) ?? 0) + 1);
      ws.reset();
    }
  } finally {
    logits.dispose();
    ws.dispose();
  }
  return counts;
}

function assertMatches(counts: Map<string, number>, ref: Map<string, number>, label: string): void {
  const keys = [...new Set([...ref.keys(), ...counts.keys()])];
  const { chi2, critical, df, impossible } = chiSquare(keys.map((k) => counts.get(k) ?? 0), keys.map((k) => ref.get(k) ?? 0));
  assert.equal(impossible, 0, `${label}: a sequence of probability 0 was emitted`);
  assert.ok(chi2 < critical, `${label}: chi2 ${chi2.toFixed(1)} >= ${critical.toFixed(1)} (df ${df})`);
}

/** K + 1 rows and drafts that the rows make likely, so that every acceptance length occurs. */
function fixture(seed: number, k: number): { rows: number[][]; drafts: number[] } {
  const rand = rng(seed);
  const rows = Array.from({ length: k + 1 }, () => normals(rand, V, 1.5));
  const drafts = rows.slice(0, k).map((row, j) => {
    const order = row.map((_, t) => t).sort((a, b) => row[b] - row[a]);
    return order[j % 2]; // the most likely token, or the second
  });
  return { rows, drafts };
}

const CASES: [string, SamplingParamsInput][] = [
  ['temperature 1', { temperature: 1 }],
  ['temperature 0.7, top-k 4', { temperature: 0.7, topK: 4 }],
  ['top-p 0.8, min-p 0.05', { temperature: 1.2, topP: 0.8, minP: 0.05 }],
  ['presence + frequency penalties (host rows)', { temperature: 1, presencePenalty: 0.8, frequencyPenalty: 0.3 }],
];

CASES.forEach(([name, input], i) => {
  test(`rejection sampling keeps the target distribution: ${name}`, () => {
    const { rows, drafts } = fixture(40 + i, 3);
    const params = SamplingParams.create(input);
    const outputs = [drafts[1], 7];
    const ref = referenceOutcomes(rows, drafts, params, outputs);
    const sum = [...ref.values()].reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-9, `reference sums to ${sum}`);
    assert.ok([...ref.keys()].some((k) => k.split(',').length === 4), 'the bonus path has mass');
    assertMatches(sampleOutcomes(rows, drafts, params, outputs, 500, 60, 11 + i), ref, name);
  });
});

test('the chi-square check has power: vLLM rule vs sampling every position independently differ', () => {
  const { rows, drafts } = fixture(3, 3);
  const params = SamplingParams.create({ temperature: 1 });
  const ref = referenceOutcomes(rows, drafts, params, []);
  // A wrong rule: always accept the first draft.
  const wrong = new Map<string, number>();
  const first = `${drafts[0]},`;
  for (const [k, p] of referenceOutcomes(rows.slice(1), drafts.slice(1), params, [drafts[0]])) wrong.set(first + k, p);
  const counts = sampleOutcomes(rows, drafts, params, [], 500, 40, 5);
  const keys = [...new Set([...wrong.keys(), ...counts.keys(), ...ref.keys()])];
  const { chi2, critical, impossible } = chiSquare(keys.map((k) => counts.get(k) ?? 0), keys.map((k) => wrong.get(k) ?? 0));
  assert.ok(impossible > 0 || chi2 > critical);
});

test('greedy: accept while the draft is the argmax, then the argmax', () => {
  for (let seed = 0; seed < 20; seed++) {
    const { rows, drafts } = fixture(100 + seed, 4);
    const params = SamplingParams.create({ temperature: 0 });
    const ref = referenceOutcomes(rows, drafts, params, []);
    assert.equal(ref.size, 1);
    const counts = sampleOutcomes(rows, drafts, params, [], 3, 1, seed);
    assert.deepEqual([...counts.keys()], [...ref.keys()], `fixture ${seed}`);
  }
});

test('a seeded request draws what the plain sampler draws for the same output positions', () => {
  const { rows, drafts } = fixture(9, 3);
  const params = SamplingParams.create({ temperature: 1, topP: 0.9, seed: 77 });
  const sampler = createSampler(ops, DType.F32, 0);
  const ws = new Workspace(ops);
  const outputs = [4, 4];
  // Row by row with the plain sampler: position n = outputs.length + j uses the seed's n-th draw.
  const plain = rows.map((row, j) => {
    const t = Tensor.fromF32(ops, Float32Array.from(row), [1, V]);
    try {
      return sampler.sample(ws, t, [state(params, [...outputs, ...drafts.slice(0, j)])]).tokenIds[0];
    } finally {
      t.dispose();
    }
  });
  const all = Tensor.fromF32(ops, Float32Array.from(rows.flat()), [rows.length, V]);
  try {
    const res = rejectionSample(sampler, ws, all, [state(params, outputs)], [drafts]);
    assert.deepEqual(res.tokenIds[0], acceptDrafts(plain, drafts));
  } finally {
    all.dispose();
    ws.dispose();
  }
});

test('acceptDrafts: the accepted prefix then the first mismatch, or the bonus', () => {
  assert.deepEqual(acceptDrafts([5, 6, 7, 8], [5, 6, 7]), [5, 6, 7, 8]);
  assert.deepEqual(acceptDrafts([5, 9, 7, 8], [5, 6, 7]), [5, 9]);
  assert.deepEqual(acceptDrafts([1, 6, 7, 8], [5, 6, 7]), [1]);
  assert.deepEqual(acceptDrafts([3], []), [3]);
});
