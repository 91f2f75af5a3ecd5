// CPU ops against plain TypeScript references: embedding, gather, add, gated
// activations, norms and linear, for every weight dtype, at awkward sizes.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { DType, Tensor, WEIGHT_DTYPES, assertClose, cpu, f32, i32, randn, rng, sameBitsOneAndTwoThreads, weight } from './helpers.js';

const ops = cpu(2);

function refLinear(x: Float32Array, w: Float32Array, b: Float32Array | null, M: number, N: number, K: number): Float64Array {
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let s = b ? b[n] : 0;
      for (let k = 0; k < K; k++) s += x[m * K + k] * w[n * K + k];
      out[m * N + n] = s;
    }
  return out;
}

function runLinear(o: typeof ops, x: Float32Array, wv: Float32Array, bv: Float32Array | null, M: number, N: number, K: number, dt: DType) {
  const w = weight(o, wv, [N, K], dt);
  const b = bv ? weight(o, bv, [N], dt) : null;
  const xt = f32(o, x, [M, K]);
  const out = Tensor.empty(o, [M, N], DType.F32);
  assert.equal(o.linear(out.addr, xt.addr, w.t.addr, b ? b.t.addr : 0, M, N, K, dt, DType.F32), 0, o.lastError());
  const got = out.toF32();
  for (const t of [w.t, b?.t, xt, out]) t?.dispose();
  return { got, wRef: w.ref, bRef: b?.ref ?? null };
}

test('linear matches the reference for every weight dtype, M, and with a bias', () => {
  const r = rng(10);
  for (const dt of WEIGHT_DTYPES)
    for (const [M, N, K] of [
      [1, 45, 131],
      [3, 45, 131],
      [37, 45, 131],
      [8, 70, 16],
      [13, 129, 7],
      [9, 300, 200],
      [67, 50, 40], // above 64 rows: the packed-panel GEMM
      [130, 45, 131],
    ])
      for (const withBias of [false, true]) {
        const x = randn(r, M * K);
        const wv = randn(r, N * K, 0.5);
        const bv = withBias ? randn(r, N) : null;
        const { got, wRef, bRef } = runLinear(ops, x, wv, bv, M, N, K, dt);
        assertClose(got, refLinear(x, wRef, bRef, M, N, K), `linear ${DType[dt]} M=${M} N=${N} K=${K} bias=${withBias}`);
      }
});

test('linear: a row gives the same bits alone and in batches of any size (GEMV and GEMM paths)', () => {
  const r = rng(11);
  for (const dt of WEIGHT_DTYPES)
    for (const [N, K] of [
      [77, 259],
      [50, 16],
      [33, 7],
      [100, 800],
    ]) {
      const x = randn(r, 130 * K);
      const wv = randn(r, N * K);
      const bv = randn(r, N);
      const row5 = (M: number) => runLinear(ops, x.subarray(0, M * K), wv, bv, M, N, K, dt).got.slice(5 * N, 6 * N);
      const alone = runLinear(ops, x.subarray(5 * K, 6 * K), wv, bv, 1, N, K, dt).got;
      const what = `${DType[dt]} N=${N} K=${K}`;
      // 8 and 64 rows take the streaming GEMV, 65 and 130 the packed-panel GEMM
      for (const M of [8, 64, 65, 130]) assert.deepEqual(row5(M), alone, `batch of ${M}, ${what}`);
    }
});

test('embedding gathers and scales rows of every weight dtype', () => {
  const r = rng(12);
  const [vocab, hidden] = [50, 67];
  const ids = [3, 0, 49, 3, 17];
  for (const dt of WEIGHT_DTYPES) {
    const w = weight(ops, randn(r, vocab * hidden), [vocab, hidden], dt);
    const out = Tensor.empty(ops, [ids.length, hidden], DType.F32);
    assert.equal(ops.embedding(out.addr, w.t.addr, i32(ops, ids).addr, ids.length, hidden, 2.5, dt, DType.F32), 0);
    const want = ids.flatMap((id) => Array.from(w.ref.subarray(id * hidden, (id + 1) * hidden), (v) => v * 2.5));
    assertClose(out.toF32(), want, `embedding ${DType[dt]}`);
  }
});

test('gather_rows and add', () => {
  const r = rng(13);
  const x = randn(r, 7 * 67);
  const out = Tensor.empty(ops, [3, 67], DType.F32);
  assert.equal(ops.gatherRows(out.addr, f32(ops, x).addr, i32(ops, [6, 0, 6]).addr, 3, 67, DType.F32), 0);
  assert.deepEqual(out.toF32(), Float32Array.from([...x.subarray(6 * 67, 7 * 67), ...x.subarray(0, 67), ...x.subarray(6 * 67, 7 * 67)]));
  for (const n of [1, 67, 100003]) {
    const a = randn(r, n);
    const b = randn(r, n);
    const o = Tensor.empty(ops, [n], DType.F32);
    assert.equal(ops.add(o.addr, f32(ops, a).addr, f32(ops, b).addr, n, DType.F32), 0);
    assert.deepEqual(o.toF32(), a.map((v, i) => v + b[i]));
  }
});

const silu = (g: number) => g / (1 + Math.exp(-g));
const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

test('silu_and_mul, gelu_tanh_and_mul and gelu_tanh', () => {
  const r = rng(14);
  for (const [T, d] of [
    [1, 67],
    [5, 131],
    [300, 100],
  ]) {
    const x = randn(r, T * 2 * d, 6);
    for (const [name, act] of [
      ['siluAndMul', silu],
      ['geluTanhAndMul', geluTanh],
    ] as const) {
      const out = Tensor.empty(ops, [T, d], DType.F32);
      assert.equal(ops[name](out.addr, f32(ops, x).addr, T, d, DType.F32), 0);
      const want = new Float64Array(T * d);
      for (let t = 0; t < T; t++) for (let j = 0; j < d; j++) want[t * d + j] = act(x[t * 2 * d + j]) * x[t * 2 * d + d + j];
      assertClose(out.toF32(), want, `${name} T=${T} d=${d}`);
    }
  }
  const x = randn(r, 1001, 8);
  x.set([-100, 100, 0, -1e-3], 0);
  const out = Tensor.empty(ops, [1001], DType.F32);
  assert.equal(ops.geluTanh(out.addr, f32(ops, x).addr, 1001, DType.F32), 0);
  assertClose(out.toF32(), Array.from(x, geluTanh), 'gelu_tanh');
});

test('scale_softcap: x * scale, then cap * tanh(x / cap), in place', () => {
  const r = rng(15);
  const x = randn(r, 1003, 40);
  x.set([-1000, 1000, 0], 0);
  for (const [scale, cap] of [[1, 30], [0.25, 0], [1 / 8, 50], [2, 0.5]]) {
    const t = f32(ops, x);
    assert.equal(ops.scaleSoftcap(t.addr, t.addr, x.length, scale, cap, DType.F32), 0, ops.lastError());
    const want = Array.from(x, (v) => (cap > 0 ? cap * Math.tanh((v * scale) / cap) : v * scale));
    assertClose(t.toF32(), want, `scale ${scale} cap ${cap}`);
    t.dispose();
  }
});

function refNorm(x: Float32Array, res: Float32Array | null, w: Float32Array, b: Float32Array | null, T: number, H: number, eps: number, off: number) {
  const out = new Float64Array(T * H);
  const r = new Float64Array(T * H);
  for (let t = 0; t < T; t++) {
    let mean = 0;
    for (let i = 0; i < H; i++) r[t * H + i] = x[t * H + i] + (res ? res[t * H + i] : 0);
    if (b) {
      for (let i = 0; i < H; i++) mean += r[t * H + i];
      mean /= H;
    }
    let ss = 0;
    for (let i = 0; i < H; i++) ss += (r[t * H + i] - mean) ** 2;
    const inv = 1 / Math.sqrt(ss / H + eps);
    for (let i = 0; i < H; i++) out[t * H + i] = (r[t * H + i] - mean) * inv * (w[i] + off) + (b ? b[i] : 0);
  }
  return { out, r };
}

test('rms_norm and layer_norm, with and without the fused residual', () => {
  const rnd = rng(15);
  for (const dt of WEIGHT_DTYPES)
    for (const [T, H] of [
      [1, 67],
      [4, 67],
      [33, 160],
    ])
      for (const withRes of [false, true])
        for (const layer of [false, true]) {
          const x = randn(rnd, T * H, 3);
          const res = withRes ? randn(rnd, T * H, 2) : null;
          const w = weight(ops, randn(rnd, H), [H], dt);
          const b = layer ? weight(ops, randn(rnd, H), [H], dt) : null;
          const off = layer ? 0 : 1;
          const xt = f32(ops, x);
          const rt = res ? f32(ops, res) : null;
          // out aliases x for the residual case (allowed by ops.h)
          const out = withRes ? xt : Tensor.empty(ops, [T, H], DType.F32);
          const rc = layer
            ? ops.layerNorm(out.addr, xt.addr, rt?.addr ?? 0, w.t.addr, b!.t.addr, T, H, 1e-5, dt, DType.F32)
            : ops.rmsNorm(out.addr, xt.addr, rt?.addr ?? 0, w.t.addr, T, H, 1e-6, off, dt, DType.F32);
          assert.equal(rc, 0, ops.lastError());
          const want = refNorm(x, res, w.ref, b?.ref ?? null, T, H, layer ? 1e-5 : 1e-6, off);
          const what = `${layer ? 'layer' : 'rms'}_norm ${DType[dt]} T=${T} H=${H} residual=${withRes}`;
          assertClose(out.toF32(), want.out, what);
          if (rt) assertClose(rt.toF32(), want.r, `${what} (residual out)`);
        }
});

test('1 and 2 threads give identical bits', () => {
  const r = rng(16);
  const [M, N, K] = [100, 203, 131];
  const x = randn(r, M * K);
  const wv = randn(r, N * K);
  for (const dt of WEIGHT_DTYPES)
    for (const m of [1, M]) sameBitsOneAndTwoThreads((o) => runLinear(o, x.subarray(0, m * K), wv, null, m, N, K, dt).got, `linear ${DType[dt]} M=${m}`);
  const g = randn(r, 64 * 2 * 300);
  sameBitsOneAndTwoThreads((o) => {
    const out = Tensor.empty(o, [64, 300], DType.F32);
    assert.equal(o.siluAndMul(out.addr, f32(o, g).addr, 64, 300, DType.F32), 0);
    return out.toF32();
  }, 'silu_and_mul');
  sameBitsOneAndTwoThreads((o) => {
    const out = Tensor.empty(o, [64, 300], DType.F32);
    const w = weight(o, wv.subarray(0, 300), [300], DType.BF16).t;
    assert.equal(o.rmsNorm(out.addr, f32(o, g.subarray(0, 64 * 300)).addr, 0, w.addr, 64, 300, 1e-6, 0, DType.BF16, DType.F32), 0);
    return out.toF32();
  }, 'rms_norm');
  cpu(2);
});
