// The CPU mixture-of-experts kernels against a TypeScript reference: router softmax +
// top-k (ties to the lower expert id, renormalized or not), the permutation (grouped
// by expert, pair order kept), the grouped GEMM (per expert, weights f32 / f16 / bf16,
// experts without rows not needed), the weighted un-permute with a shared expert;
// and batch invariance: a token's MoE output has the same bits alone and in a batch.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { check } from '../../src/native/index.js';
import type { NativeOps } from '../../src/native/index.js';
import { assertClose, cpu, DType, f32, i32, randn, rng, sameBitsOneAndTwoThreads, Tensor, weight, WEIGHT_DTYPES } from './helpers.js';

/** torch.softmax + torch.topk (sorted, ties: lower index first) [+ renormalize]. */
function refTopk(logits: Float32Array, T: number, E: number, k: number, renorm: boolean) {
  const w: number[] = [], ids: number[] = [];
  for (let t = 0; t < T; t++) {
    const row = Array.from(logits.subarray(t * E, (t + 1) * E));
    const m = Math.max(...row);
    const ex = row.map((x) => Math.exp(x - m));
    const s = ex.reduce((a, b) => a + b, 0);
    const p = ex.map((x) => x / s);
    const order = p.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, k);
    const sum = order.reduce((a, [v]) => a + v, 0);
    for (const [v, i] of order) w.push(renorm ? v / sum : v), ids.push(i);
  }
  return { w: Float32Array.from(w), ids: Int32Array.from(ids) };
}

test('moe_topk_softmax: softmax, top-k in order, ties to the lower expert id, renormalize', () => {
  const ops = cpu();
  const r = rng(19);
  for (const [T, E, k] of [[5, 8, 2], [3, 128, 8], [4, 60, 4], [2, 8, 8]]) {
    const logits = randn(r, T * E, 2);
    // Ties: token 0 gets three equal top logits; torch.topk keeps the lower ids first.
    logits[1] = logits[4] = logits[6] = 9;
    for (const renorm of [false, true]) {
      const w = Tensor.empty(ops, [T, k], DType.F32), ids = Tensor.empty(ops, [T, k], DType.I32);
      const l = f32(ops, logits, [T, E]);
      check(ops, ops.moeTopkSoftmax(w.addr, ids.addr, l.addr, T, E, k, renorm ? 1 : 0, DType.F32), 'topk');
      const ref = refTopk(logits, T, E, k, renorm);
      assert.deepEqual(Array.from(ids.toI32()), Array.from(ref.ids), `ids T=${T} E=${E} k=${k}`);
      assertClose(w.toF32(), ref.w, `weights T=${T} E=${E} k=${k} renorm=${renorm}`, 1e-6);
      if (k >= 3) assert.deepEqual(Array.from(ids.toI32().subarray(0, 3)), [1, 4, 6]);
      for (const t of [w, ids, l]) t.dispose();
    }
  }
  const w = Tensor.empty(ops, [1, 2], DType.F32), ids = Tensor.empty(ops, [1, 2], DType.I32), l = f32(ops, new Float32Array(8), [1, 8]);
  assert.notEqual(ops.moeTopkSoftmax(w.addr, ids.addr, l.addr, 1, 8, 9, 1, DType.F32), 0);
  assert.match(ops.lastError(), /k=9/);
  for (const t of [w, ids, l]) t.dispose();
});

/** The permutation: offsets, the token of each permuted row, each pair's row. */
function permute(ops: NativeOps, ids: Int32Array, E: number, k: number) {
  const P = ids.length;
  const off = Tensor.empty(ops, [E + 1], DType.I32), sorted = Tensor.empty(ops, [P], DType.I32), inv = Tensor.empty(ops, [P], DType.I32);
  const idt = i32(ops, ids);
  check(ops, ops.moePermute(off.addr, sorted.addr, inv.addr, idt.addr, P, E, k), 'permute');
  return { off, sorted, inv, idt };
}

test('moe_permute: pairs grouped by expert in pair order; sorted tokens and inverse agree', () => {
  const ops = cpu();
  const r = rng(7);
  const [T, E, k] = [9, 6, 3];
  const ids = Int32Array.from({ length: T * k }, () => Math.floor(r() * E));
  const { off, sorted, inv, idt } = permute(ops, ids, E, k);
  const want: number[] = [0];
  const rows: number[] = [];
  for (let e = 0; e < E; e++) {
    for (let p = 0; p < ids.length; p++) if (ids[p] === e) rows.push(p);
    want.push(rows.length);
  }
  assert.deepEqual(Array.from(off.toI32()), want);
  assert.deepEqual(Array.from(sorted.toI32()), rows.map((p) => Math.floor(p / k)));
  const invv = inv.toI32();
  rows.forEach((p, row) => assert.equal(invv[p], row));
  const bad = i32(ops, [0, 6]);
  assert.notEqual(ops.moePermute(off.addr, sorted.addr, inv.addr, bad.addr, 2, E, 1), 0);
  assert.match(ops.lastError(), /expert id 6/);
  for (const t of [off, sorted, inv, idt, bad]) t.dispose();
});

test('moe_route: the top-k of the reference, then its permutation (the two calls in one)', () => {
  const ops = cpu();
  const r = rng(29);
  for (const [T, E, k, renorm] of [[7, 128, 8, true], [5, 8, 2, false]] as const) {
    const P = T * k;
    const logits = randn(r, T * E, 2);
    const l = f32(ops, logits, [T, E]);
    const w = Tensor.empty(ops, [P], DType.F32), ids = Tensor.empty(ops, [P], DType.I32);
    const off = Tensor.empty(ops, [E + 1], DType.I32), sorted = Tensor.empty(ops, [P], DType.I32), inv = Tensor.empty(ops, [P], DType.I32);
    check(ops, ops.moeRoute(w.addr, ids.addr, off.addr, sorted.addr, inv.addr, l.addr, T, E, k, renorm ? 1 : 0, DType.F32), 'route');
    const ref = refTopk(logits, T, E, k, renorm);
    assert.deepEqual(Array.from(ids.toI32()), Array.from(ref.ids), `ids T=${T} E=${E} k=${k}`);
    assertClose(w.toF32(), ref.w, `weights T=${T} E=${E} k=${k}`, 1e-6);
    const p = permute(ops, ref.ids, E, k);
    assert.deepEqual(Array.from(off.toI32()), Array.from(p.off.toI32()), 'offsets');
    assert.deepEqual(Array.from(sorted.toI32()), Array.from(p.sorted.toI32()), 'sorted tokens');
    assert.deepEqual(Array.from(inv.toI32()), Array.from(p.inv.toI32()), 'inverse');
    for (const t of [l, w, ids, off, sorted, inv, p.off, p.sorted, p.inv, p.idt]) t.dispose();
  }
});

test('moe_grouped_gemm: each expert\'s rows times its weight, any weight dtype, empty experts skipped', () => {
  const ops = cpu();
  const r = rng(3);
  for (const wdt of WEIGHT_DTYPES) {
    for (const [counts, N, K] of [[[3, 0, 70, 1], 40, 33], [[1, 0, 0, 0], 96, 64], [[0, 2, 0, 5], 17, 8]] as [number[], number, number][]) {
      const E = counts.length;
      const R = counts.reduce((a, b) => a + b, 0);
      const offsets = [0];
      for (const c of counts) offsets.push(offsets[offsets.length - 1] + c);
      const xv = randn(r, R * K);
      const w = weight(ops, randn(r, E * N * K, 0.5), [E, N, K], wdt);
      const x = f32(ops, xv, [R, K]), off = i32(ops, offsets), out = Tensor.empty(ops, [R, N], DType.F32);
      check(ops, ops.moeGroupedGemm(out.addr, x.addr, w.t.addr, off.addr, R, E, N, K, wdt, DType.F32), 'grouped gemm');
      const want = new Float32Array(R * N);
      for (let e = 0; e < E; e++) {
        for (let row = offsets[e]; row < offsets[e + 1]; row++) {
          for (let n = 0; n < N; n++) {
            let s = 0;
            for (let kk = 0; kk < K; kk++) s += xv[row * K + kk] * w.ref[(e * N + n) * K + kk];
            want[row * N + n] = s;
          }
        }
      }
      assertClose(out.toF32(), want, `grouped gemm ${DType[wdt]} counts=${counts}`, 1e-5);
      for (const t of [x, off, out, w.t]) t.dispose();
    }
  }
});

test('moe_grouped_gemm_gather: x read through x_rows; the bits of gather_rows then moe_grouped_gemm', () => {
  const ops = cpu();
  const r = rng(13);
  const [E, N, K, T, R] = [4, 24, 16, 6, 8]; // expert rows 2, 0, 5, 1
  const off = i32(ops, [0, 2, 2, 7, 8]);
  const w = weight(ops, randn(r, E * N * K, 0.5), [E, N, K], DType.F32);
  const rows = i32(ops, Int32Array.from({ length: R }, () => Math.floor(r() * T)));
  const x = f32(ops, randn(r, T * K), [T, K]);
  const [o1, o2, xp] = [Tensor.empty(ops, [R, N], DType.F32), Tensor.empty(ops, [R, N], DType.F32), Tensor.empty(ops, [R, K], DType.F32)];
  check(ops, ops.moeGroupedGemmGather(o1.addr, x.addr, rows.addr, w.t.addr, off.addr, R, E, N, K, DType.F32, DType.F32), 'gather gemm');
  check(ops, ops.gatherRows(xp.addr, x.addr, rows.addr, R, K, DType.F32), 'gather');
  check(ops, ops.moeGroupedGemm(o2.addr, xp.addr, w.t.addr, off.addr, R, E, N, K, DType.F32, DType.F32), 'gg');
  assert.deepEqual(o1.toF32(), o2.toF32());
  const bad = i32(ops, Int32Array.from({ length: R }, (_, i) => (i === 3 ? -1 : 0)));
  assert.notEqual(ops.moeGroupedGemmGather(o1.addr, x.addr, bad.addr, w.t.addr, off.addr, R, E, N, K, DType.F32, DType.F32), 0);
  assert.match(ops.lastError(), /x_rows\[3\]/);
  for (const t of [off, w.t, rows, x, o1, o2, xp, bad]) t.dispose();
});

test('moe_unpermute_sum: weighted slots in order, plus the sigmoid-gated shared expert', () => {
  const ops = cpu();
  const r = rng(5);
  const [T, k, h] = [4, 3, 37];
  const ids = Int32Array.from({ length: T * k }, () => Math.floor(r() * 5));
  const { off, sorted, inv, idt } = permute(ops, ids, 5, k);
  const yv = randn(r, T * k * h), wv = Float32Array.from({ length: T * k }, () => r());
  const sv = randn(r, T * h), gv = randn(r, T, 3);
  const y = f32(ops, yv), w = f32(ops, wv), s = f32(ops, sv), gt = f32(ops, gv);
  const invv = inv.toI32();
  for (const mode of ['none', 'shared', 'gated'] as const) {
    const out = Tensor.empty(ops, [T, h], DType.F32);
    check(ops, ops.moeUnpermuteSum(out.addr, y.addr, w.addr, inv.addr, mode === 'none' ? 0 : s.addr, mode === 'gated' ? gt.addr : 0, T, k, h, DType.F32), 'unpermute');
    const want = new Float32Array(T * h);
    for (let t = 0; t < T; t++) {
      const g = mode === 'gated' ? 1 / (1 + Math.exp(-gv[t])) : 1;
      for (let i = 0; i < h; i++) {
        let a = 0;
        for (let j = 0; j < k; j++) a += wv[t * k + j] * yv[invv[t * k + j] * h + i];
        want[t * h + i] = a + (mode === 'none' ? 0 : g * sv[t * h + i]);
      }
    }
    assertClose(out.toF32(), want, `unpermute ${mode}`, 1e-5);
    out.dispose();
  }
  for (const t of [off, sorted, inv, idt, y, w, s, gt]) t.dispose();
});

/** The whole MoE pipeline as FusedMoE runs it: x [T, h] -> [T, h]. */
function moe(ops: NativeOps, xv: Float32Array, T: number, c: { E: number; k: number; h: number; F: number; gate: Tensor; w13: Tensor; w2: Tensor }): Float32Array {
  const { E, k, h, F } = c;
  const P = T * k;
  const x = f32(ops, xv, [T, h]);
  const logits = Tensor.empty(ops, [T, E], DType.F32);
  check(ops, ops.linear(logits.addr, x.addr, c.gate.addr, 0, T, E, h, c.gate.dtype, DType.F32), 'router');
  const w = Tensor.empty(ops, [T, k], DType.F32), ids = Tensor.empty(ops, [T, k], DType.I32);
  check(ops, ops.moeTopkSoftmax(w.addr, ids.addr, logits.addr, T, E, k, 1, DType.F32), 'topk');
  const off = Tensor.empty(ops, [E + 1], DType.I32), sorted = Tensor.empty(ops, [P], DType.I32), inv = Tensor.empty(ops, [P], DType.I32);
  check(ops, ops.moePermute(off.addr, sorted.addr, inv.addr, ids.addr, P, E, k), 'permute');
  const xp = Tensor.empty(ops, [P, h], DType.F32), gu = Tensor.empty(ops, [P, 2 * F], DType.F32);
  const a = Tensor.empty(ops, [P, F], DType.F32), y = Tensor.empty(ops, [P, h], DType.F32), out = Tensor.empty(ops, [T, h], DType.F32);
  check(ops, ops.gatherRows(xp.addr, x.addr, sorted.addr, P, h, DType.F32), 'gather');
  check(ops, ops.moeGroupedGemm(gu.addr, xp.addr, c.w13.addr, off.addr, P, E, 2 * F, h, c.w13.dtype, DType.F32), 'gate_up');
  check(ops, ops.siluAndMul(a.addr, gu.addr, P, F, DType.F32), 'silu');
  check(ops, ops.moeGroupedGemm(y.addr, a.addr, c.w2.addr, off.addr, P, E, h, F, c.w2.dtype, DType.F32), 'down');
  check(ops, ops.moeUnpermuteSum(out.addr, y.addr, w.addr, inv.addr, 0, 0, T, k, h, DType.F32), 'unpermute');
  const res = out.toF32();
  for (const t of [x, logits, w, ids, off, sorted, inv, xp, gu, a, y, out]) t.dispose();
  return res;
}

test('MoE batch invariance: a token\'s output has the same bits alone and among 70 tokens, on 1 or 2 threads', () => {
  const [E, k, h, F] = [16, 4, 64, 48];
  const r = rng(11);
  const gv = randn(r, E * h, 0.3), w13v = randn(r, E * 2 * F * h, 0.1), w2v = randn(r, E * h * F, 0.1);
  const T = 70; // past the 64-row GEMV limit, so experts with many rows take the packed GEMM
  const xv = randn(r, T * h);
  const run = (ops: NativeOps, rows: number[]) => {
    const c = { E, k, h, F, gate: weight(ops, gv, [E, h], DType.BF16).t, w13: weight(ops, w13v, [E, 2 * F, h], DType.BF16).t, w2: weight(ops, w2v, [E, h, F], DType.BF16).t };
    const x = new Float32Array(rows.length * h);
    rows.forEach((t, i) => x.set(xv.subarray(t * h, (t + 1) * h), i * h));
    const out = moe(ops, x, rows.length, c);
    for (const t of [c.gate, c.w13, c.w2]) t.dispose();
    return out;
  };
  const ops = cpu();
  const all = run(ops, Array.from({ length: T }, (_, i) => i));
  for (const t of [0, 33, 69]) {
    const alone = run(ops, [t]);
    assert.deepEqual(new Uint32Array(alone.buffer), new Uint32Array(all.buffer.slice(t * h * 4, (t + 1) * h * 4)), `token ${t} alone vs in the batch`);
  }
  sameBitsOneAndTwoThreads((o) => run(o, Array.from({ length: T }, (_, i) => i)), 'moe');
});
