// vt_sample and vt_logprobs of the CPU library against a plain f64 TypeScript
// reference of ops.h's spec (softmax with temperature, min-p, top-k, top-p with
// ties kept, inverse CDF in token order).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { NativeOps } from '../../src/native/index.js';
import { DType, Tensor, cpu, f32, i32, rng } from './helpers.js';

const ops = cpu(2);

interface Params {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  u: number;
}
const RANDOM: Params = { temperature: 1, topK: 0, topP: 1, minP: 0, u: 0.5 };

/**
 * Relative margin under which a reference decision may flip by float rounding:
 * the op's f32 weights are within ~2e-6 of the f64 ones (x = (l - m) / T has 3
 * roundings, scaled by |x| <= 10 here), sums of fixed-point masses are exact.
 */
const TOL = 1e-5;

/** The kept tokens of a random row and their f64 weights, per the spec. */
function refKept(row: Float32Array, p: Params): { w: Float64Array; keep: Uint8Array; total: number; fragile: boolean } {
  const V = row.length;
  const val = (i: number) => (Number.isNaN(row[i]) ? -Infinity : row[i]);
  let m = -Infinity;
  for (let i = 0; i < V; i++) m = Math.max(m, val(i));
  const w = new Float64Array(V);
  for (let i = 0; i < V; i++) w[i] = Math.exp((val(i) - m) / p.temperature);
  const keep = new Uint8Array(V).fill(1);
  let fragile = false;
  if (p.minP > 0) {
    for (let i = 0; i < V; i++) {
      if (w[i] < p.minP) keep[i] = 0;
      if (Math.abs(w[i] - p.minP) <= TOL * p.minP) fragile = true;
    }
  }
  if (p.topK > 0 && p.topK < V) {
    const kth = Array.from(row, (_, i) => val(i)).sort((a, b) => b - a)[p.topK - 1];
    for (let i = 0; i < V; i++) if (val(i) < kth) keep[i] = 0;
  }
  let total = 0;
  for (let i = 0; i < V; i++) if (keep[i]) total += w[i];
  if (p.topP < 1) {
    const target = p.topP * total;
    const order = Array.from({ length: V }, (_, i) => i).filter((i) => keep[i]).sort((a, b) => val(b) - val(a));
    let cum = 0;
    let threshold = -Infinity;
    for (let j = 0; j < order.length; ) {
      const prev = cum;
      let e = j;
      for (; e < order.length && val(order[e]) === val(order[j]); e++) cum += w[order[e]];
      if (cum >= target || e === order.length) {
        threshold = val(order[j]);
        if (Math.abs(cum - target) <= TOL * total || Math.abs(prev - target) <= TOL * total) fragile = true;
        break;
      }
      j = e;
    }
    for (let i = 0; i < V; i++) if (val(i) < threshold) keep[i] = 0;
    total = cum;
  }
  return { w, keep, total, fragile };
}

/**
 * The spec's token for one row; fragile when rounding could pick another, and
 * consistent(id): id's share of the reference CDF holds the draw up to rounding.
 */
function refSample(row: Float32Array, p: Params): { id: number; fragile: boolean; consistent: (id: number) => boolean } {
  let argmax = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[argmax]) argmax = i;
  if (!(p.temperature >= 1e-5)) return { id: argmax, fragile: false, consistent: (id) => id === argmax };
  const { w, keep, total, fragile } = refKept(row, p);
  const t = p.u * total;
  const before = new Float64Array(row.length);
  let cum = 0;
  let id = -1;
  let near = fragile;
  for (let i = 0; i < row.length; i++) {
    before[i] = cum;
    if (!keep[i]) continue;
    cum += w[i];
    if (id < 0 && cum > t) {
      id = i;
      near ||= t - before[i] <= TOL * total || cum - t <= TOL * total || w[i] < 1e-12 * total;
    }
  }
  const slack = TOL * total;
  const consistent = (g: number) => fragile || (keep[g] === 1 && before[g] <= t + slack && before[g] + w[g] >= t - slack);
  return { id, fragile: near, consistent };
}

/** Runs vt_sample on the CPU library over rows [n, vocab] with per-row params. */
function sample(o: NativeOps, logits: Float32Array, vocab: number, params: Params[]): Int32Array {
  const n = params.length;
  const f = (get: (p: Params) => number) => f32(o, Float32Array.from(params, get));
  const x = f32(o, logits, [n, vocab]);
  const temp = f((p) => p.temperature);
  const topK = i32(o, params.map((p) => p.topK));
  const topP = f((p) => p.topP);
  const minP = f((p) => p.minP);
  const u = f((p) => p.u);
  const out = Tensor.empty(o, [n], DType.I32);
  assert.equal(o.sample(out.addr, x.addr, temp.addr, topK.addr, topP.addr, minP.addr, u.addr, n, vocab, DType.F32), 0, o.lastError());
  const ids = out.toI32();
  for (const t of [x, temp, topK, topP, minP, u, out]) t.dispose();
  return ids;
}

/** Params as the kernel sees them (f32). */
const asF32 = (p: Params): Params => ({
  temperature: Math.fround(p.temperature),
  topK: p.topK,
  topP: Math.fround(p.topP),
  minP: Math.fround(p.minP),
  u: Math.fround(p.u),
});

function randomRows(seed: number, n: number, vocab: number, scale: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n * vocab);
  for (let i = 0; i < out.length; i++) out[i] = (2 * r() - 1) * scale;
  return out;
}

/**
 * Samples every row with the CPU op and the reference: the same token where the
 * reference is not fragile (at most maxFragile of them), a consistent one always.
 */
function checkAgainstRef(logits: Float32Array, vocab: number, params: Params[], what: string, maxFragile = 0.05): number {
  const ps = params.map(asF32);
  const got = sample(ops, logits, vocab, ps);
  let fragile = 0;
  ps.forEach((p, r) => {
    const want = refSample(logits.subarray(r * vocab, (r + 1) * vocab), p);
    assert.ok(want.consistent(got[r]), `${what}: row ${r} drew ${got[r]}, outside the reference's CDF at u (${JSON.stringify(p)})`);
    if (want.fragile) {
      fragile++;
      return;
    }
    assert.equal(got[r], want.id, `${what}: row ${r} (${JSON.stringify(p)})`);
  });
  assert.ok(fragile <= Math.max(1, params.length * maxFragile), `${what}: ${fragile} of ${params.length} rows too close to a rounding boundary`);
  return fragile;
}

test('greedy rows take the first argmax', () => {
  const vocab = 37;
  const rows = randomRows(1, 4, vocab, 3);
  rows[0 * vocab + 5] = rows[0 * vocab + 30] = 9; // tie at the max: id 5
  rows[1 * vocab + 36] = 9;
  rows[2 * vocab + 0] = 9;
  rows[2 * vocab + 1] = 9;
  const params = [0, 1e-6, 0, 9e-6].map((temperature) => ({ ...RANDOM, temperature, topK: 3, topP: 0.5 }));
  assert.deepEqual(Array.from(sample(ops, rows, vocab, params)), [5, 36, 0, refSample(rows.subarray(3 * vocab), params[3]).id]);
});

test('random rows match the reference: temperature, each filter alone and combined', () => {
  const vocab = 1000;
  const r = rng(7);
  const cases: [string, (i: number) => Partial<Params>][] = [
    ['temperature', (i) => ({ temperature: [0.3, 0.7, 1, 1.5, 3][i % 5] })],
    ['min_p', (i) => ({ minP: [0.01, 0.1, 0.5, 0.9][i % 4] })],
    ['top_k', (i) => ({ topK: [1, 2, 10, 50, 999, 1000, 5000][i % 7] })],
    ['top_p', (i) => ({ topP: [0.05, 0.3, 0.6, 0.9, 0.99][i % 5] })],
    ['combined', (i) => ({ temperature: [0.5, 0.8, 1.3][i % 3], topK: [5, 40, 300][i % 3], topP: [0.8, 0.95, 0.5][(i >> 1) % 3], minP: [0, 0.05, 0.2][(i >> 2) % 3] })],
  ];
  for (const [what, make] of cases) {
    const n = 40;
    const rows = randomRows(what.length * 31, n, vocab, 6);
    const params = Array.from({ length: n }, (_, i) => ({ ...RANDOM, u: r(), ...make(i) }));
    checkAgainstRef(rows, vocab, params, what);
  }
});

test('ties: at the k-th value and at the top-p boundary are kept', () => {
  const vocab = 64;
  const row = new Float32Array(vocab).fill(-5);
  for (const i of [3, 17, 40]) row[i] = 2; // three tied tokens, best
  for (const i of [8, 9, 50, 63]) row[i] = 1; // four tied tokens, second
  // top_k = 4: the k-th value is 1, so all seven tokens are kept.
  const us = Array.from({ length: 64 }, (_, j) => (j + 0.5) / 64);
  const seen = new Set(sample(ops, new Float32Array(us.flatMap(() => Array.from(row))), vocab, us.map((u) => ({ ...RANDOM, topK: 4, u }))));
  assert.deepEqual([...seen].sort((a, b) => a - b), [3, 8, 9, 17, 40, 50, 63]);
  // top_p just above one tied token's share of the best group: the whole group is kept, nothing else.
  const { w, total } = refKept(row, { ...RANDOM, topK: 7 });
  const topP = (w[3] * 1.5) / total;
  const got = sample(ops, new Float32Array(us.flatMap(() => Array.from(row))), vocab, us.map((u) => asF32({ ...RANDOM, topK: 7, topP, u })));
  assert.deepEqual([...new Set(got)].sort((a, b) => a - b), [3, 17, 40]);
  // The first of the tied group takes the lowest third of the draws (token-order CDF).
  assert.deepEqual(Array.from(got.subarray(0, 21)), new Array(21).fill(3));
  checkAgainstRef(new Float32Array(us.flatMap(() => Array.from(row))), vocab, us.map((u) => ({ ...RANDOM, topP: 0.3, u })), 'tied top-p');
});

test('uniform near 0 and near 1 pick the first and the last kept token', () => {
  const vocab = 300;
  const base = randomRows(11, 1, vocab, 2);
  const settings: Params[] = [
    { ...RANDOM },
    { ...RANDOM, topK: 20 },
    { ...RANDOM, topP: 0.5 },
    { ...RANDOM, minP: 0.3, temperature: 0.8 },
  ];
  const us = [0, 1e-30, 1 - 2 ** -24];
  const params = settings.flatMap((s) => us.map((u) => asF32({ ...s, u })));
  const got = sample(ops, new Float32Array(params.flatMap(() => Array.from(base))), vocab, params);
  params.forEach((p, r) => {
    const { keep } = refKept(base, p);
    const kept = [...keep.keys()].filter((i) => keep[i]);
    const want = p.u > 0.5 ? kept[kept.length - 1] : kept[0];
    assert.equal(got[r], want, `u=${p.u} ${JSON.stringify(p)}`);
  });
});

test('a large row: top-p over many near-equal candidates, and 1 vs 2 threads', () => {
  const vocab = 50000;
  const n = 6;
  const rows = randomRows(5, n, vocab, 0.5); // flat: thousands of tokens in top-p's crossing bin
  const params = Array.from({ length: n }, (_, i) => ({ ...RANDOM, topP: [0.5, 0.9, 0.999][i % 3], temperature: i < 3 ? 1 : 0.2, u: (i + 0.37) / n }));
  checkAgainstRef(rows, vocab, params, 'large', 1);
  const one = sample(cpu(1), rows, vocab, params.map(asF32));
  const two = sample(cpu(2), rows, vocab, params.map(asF32));
  assert.deepEqual(one, two);
});

test('draws follow the kept distribution (chi-square)', () => {
  const vocab = 8;
  const row = Float32Array.from([0.5, 2, -1, 1.2, 1.9, -3, 0, 1.5]);
  const r = rng(99);
  for (const s of [{ ...RANDOM }, { ...RANDOM, topK: 4, temperature: 0.7 }, { ...RANDOM, topP: 0.8 }, { ...RANDOM, minP: 0.2 }]) {
    const N = 20000;
    const params = Array.from({ length: N }, () => asF32({ ...s, u: r() }));
    const got = sample(ops, new Float32Array(params.flatMap(() => Array.from(row))), vocab, params);
    const { w, keep, total } = refKept(row, asF32(s));
    const counts = new Array(vocab).fill(0);
    for (const id of got) counts[id]++;
    let chi2 = 0;
    let df = -1;
    for (let i = 0; i < vocab; i++) {
      if (!keep[i]) {
        assert.equal(counts[i], 0, `token ${i} is filtered out but was drawn (${JSON.stringify(s)})`);
        continue;
      }
      const expected = (N * w[i]) / total;
      chi2 += (counts[i] - expected) ** 2 / expected;
      df++;
    }
    assert.ok(chi2 < df + 6 * Math.sqrt(2 * Math.max(df, 1)) + 10, `chi2 ${chi2.toFixed(1)} with ${df} dof (${JSON.stringify(s)})`);
  }
});

/** Exact log-softmax reference: [chosen, top k (value desc, id asc)] and the rank. */
function refLogprobs(row: Float32Array, chosen: number, k: number) {
  let m = -Infinity;
  for (const v of row) m = Math.max(m, v);
  let s = 0;
  for (const v of row) s += Math.exp(v - m);
  const lse = m + Math.log(s);
  const order = Array.from({ length: row.length }, (_, i) => i).sort((a, b) => row[b] - row[a] || a - b).slice(0, k);
  const rank = 1 + row.filter((v) => v > row[chosen]).length;
  return { ids: [chosen, ...order], lps: [row[chosen] - lse, ...order.map((i) => row[i] - lse)], rank };
}

test('logprobs: log-softmax, rank and the top k with ties by id', () => {
  const vocab = 777;
  const n = 5;
  const rows = randomRows(3, n, vocab, 8);
  rows[2 * vocab + 10] = rows[2 * vocab + 700] = rows[2 * vocab + 5] = 9; // tied best
  for (let i = 0; i < vocab; i += 3) rows[3 * vocab + i] = 1; // many ties
  const chosen = [0, 776, 700, 3, 400];
  for (const k of [0, 1, 5, 20, vocab]) {
    const x = f32(ops, rows, [n, vocab]);
    const ch = i32(ops, chosen);
    const lp = Tensor.empty(ops, [n, k + 1], DType.F32);
    const ids = Tensor.empty(ops, [n, k + 1], DType.I32);
    const ranks = Tensor.empty(ops, [n], DType.I32);
    assert.equal(ops.logprobs(lp.addr, ids.addr, ranks.addr, x.addr, ch.addr, n, vocab, k, DType.F32), 0, ops.lastError());
    const gl = lp.toF32();
    const gi = ids.toI32();
    const gr = ranks.toI32();
    for (let r = 0; r < n; r++) {
      const want = refLogprobs(rows.subarray(r * vocab, (r + 1) * vocab), chosen[r], k);
      assert.deepEqual(Array.from(gi.subarray(r * (k + 1), (r + 1) * (k + 1))), want.ids, `ids row ${r} k=${k}`);
      assert.equal(gr[r], want.rank, `rank row ${r}`);
      want.lps.forEach((v, j) => assert.ok(Math.abs(gl[r * (k + 1) + j] - v) <= 2e-5 * Math.max(1, Math.abs(v)), `logprob row ${r} col ${j}: ${gl[r * (k + 1) + j]} vs ${v}`));
    }
    for (const t of [x, ch, lp, ids, ranks]) t.dispose();
  }
});

test('bad arguments fail with a message', () => {
  const x = f32(ops, new Float32Array(8));
  assert.notEqual(ops.sample(x.addr, x.addr, x.addr, x.addr, x.addr, x.addr, x.addr, 1, 8, DType.BF16), 0);
  assert.match(ops.lastError(), /f32/);
  assert.notEqual(ops.sample(x.addr, x.addr, x.addr, x.addr, x.addr, x.addr, x.addr, 1, 0, DType.F32), 0);
  assert.match(ops.lastError(), /vocab/);
  const ch = i32(ops, [8]);
  assert.notEqual(ops.logprobs(x.addr, x.addr, x.addr, x.addr, ch.addr, 1, 8, 0, DType.F32), 0);
  assert.match(ops.lastError(), /outside the vocabulary/);
  assert.notEqual(ops.logprobs(x.addr, x.addr, x.addr, x.addr, ch.addr, 1, 8, 9, DType.F32), 0);
  x.dispose();
  ch.dispose();
});
