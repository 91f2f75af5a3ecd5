// CPU rope, qk_norm_rope, reshape_and_cache and paged attention against plain TypeScript references.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { DType, assertClose, cpu, f32, i32, randn, rng, sameBitsOneAndTwoThreads } from './helpers.js';
import type { NativeOps } from '../../src/native/index.js';
import { Tensor as T } from '../../src/native/index.js';

const ops = cpu(2);

function cosSinCache(maxPos: number, rot: number, base = 10000): Float32Array {
  const c = new Float32Array(maxPos * rot);
  for (let p = 0; p < maxPos; p++)
    for (let i = 0; i < rot / 2; i++) {
      const a = p / base ** ((2 * i) / rot);
      c[p * rot + i] = Math.cos(a);
      c[p * rot + rot / 2 + i] = Math.sin(a);
    }
  return c;
}

function refRope(x: Float32Array, rows: number, stride: number, heads: number, D: number, rot: number, pos: number[], cache: Float32Array, neox: boolean) {
  const out = Float64Array.from(x);
  const half = rot / 2;
  for (let t = 0; t < rows; t++)
    for (let h = 0; h < heads; h++) {
      const base = t * stride + h * D;
      for (let i = 0; i < half; i++) {
        const [a, b] = neox ? [base + i, base + i + half] : [base + 2 * i, base + 2 * i + 1];
        const c = cache[pos[t] * rot + i];
        const s = cache[pos[t] * rot + half + i];
        out[a] = x[a] * c - x[b] * s;
        out[b] = x[b] * c + x[a] * s;
      }
    }
  return out;
}

test('rope: neox and gptj pairing, rotary_dim < head_dim, strided rows', () => {
  const r = rng(20);
  const [tokens, heads, kvHeads] = [5, 3, 1];
  for (const [D, rot] of [
    [40, 40],
    [64, 32],
    [32, 8],
  ])
    for (const neox of [true, false]) {
      const qStride = heads * D + 2 * kvHeads * D; // q read in place from a fused qkv row
      const kStride = qStride;
      const qkv = randn(r, tokens * qStride);
      const pos = [0, 7, 3, 99, 42];
      const cache = cosSinCache(128, rot);
      const buf = f32(ops, qkv);
      const kAddr = buf.addr + heads * D * 4;
      const rc = ops.rope(buf.addr, kAddr, i32(ops, pos).addr, f32(ops, cache).addr, tokens, heads, kvHeads, D, rot, qStride, kStride, neox ? 1 : 0, DType.F32);
      assert.equal(rc, 0, ops.lastError());
      let want = refRope(qkv, tokens, qStride, heads, D, rot, pos, cache, neox);
      const kPart = refRope(qkv.subarray(heads * D), tokens, kStride, kvHeads, D, rot, pos, cache, neox);
      want = Float64Array.from(want, (v, i) => (i >= heads * D && (i - heads * D) % qStride < kvHeads * D ? kPart[i - heads * D] : v));
      assertClose(buf.toF32(), want, `rope D=${D} rot=${rot} neox=${neox}`);
    }
});

interface Layout {
  numBlocks: number;
  blockSize: number;
  kvHeads: number;
  D: number;
}

/** Random distinct block ids per sequence (non-contiguous), as a padded table. */
function blockTables(r: () => number, lens: number[], L: Layout, maxBlocks: number): Int32Array {
  const ids = Array.from({ length: L.numBlocks }, (_, i) => i);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  const table = new Int32Array(lens.length * maxBlocks).fill(-1);
  let next = 0;
  lens.forEach((len, s) => {
    for (let b = 0; b < Math.ceil(len / L.blockSize); b++) table[s * maxBlocks + b] = ids[next++];
  });
  return table;
}

interface Case {
  heads: number;
  L: Layout;
  seqLens: number[];
  qLens: number[];
  window: number;
  softCap: number;
}

/**
 * Runs reshape_and_cache for every cached token, then attention; returns out and
 * the reference. Sequence s draws its keys, values and per-position queries from
 * rng(seed + s), so its data does not depend on the other sequences or on qLens;
 * the block tables come from rng(seed + 1000 + number of sequences).
 */
function runAttention(o: NativeOps, c: Case, seed: number) {
  const { heads, L, seqLens, qLens } = c;
  const maxBlocks = Math.max(...seqLens.map((n) => Math.ceil(n / L.blockSize))) + 1;
  const table = blockTables(rng(seed + 1000 + seqLens.length), seqLens, L, maxBlocks);
  const width = L.kvHeads * L.D;
  const qStride = heads * L.D + 5;
  const rs = seqLens.map((_, s) => rng(seed + s));
  const rowsK = seqLens.map((n, s) => randn(rs[s], n * width));
  const rowsV = seqLens.map((n, s) => randn(rs[s], n * width));
  const rowsQ = seqLens.map((n, s) => randn(rs[s], n * qStride));
  // every position of every sequence, with a padding row (slot -1) after each sequence
  const slots: number[] = [];
  const kAll: number[] = [];
  const vAll: number[] = [];
  const kvStride = width + 3;
  seqLens.forEach((n, s) => {
    for (let p = 0; p <= n; p++) {
      slots.push(p < n ? table[s * maxBlocks + Math.floor(p / L.blockSize)] * L.blockSize + (p % L.blockSize) : -1);
      for (let i = 0; i < kvStride; i++) {
        kAll.push(p < n && i < width ? rowsK[s][p * width + i] : 99);
        vAll.push(p < n && i < width ? rowsV[s][p * width + i] : -99);
      }
    }
  });
  const cacheShape = [L.numBlocks, L.blockSize, L.kvHeads, L.D];
  const kCache = T.zeros(o, cacheShape, DType.F32);
  const vCache = T.zeros(o, cacheShape, DType.F32);
  const rc = o.reshapeAndCache(f32(o, Float32Array.from(kAll)).addr, f32(o, Float32Array.from(vAll)).addr, kCache.addr, vCache.addr, i32(o, slots).addr, slots.length, L.kvHeads, L.D, kvStride, kvStride, DType.F32);
  assert.equal(rc, 0, o.lastError());

  const numTokens = qLens.reduce((a, b) => a + b, 0);
  const q = new Float32Array(numTokens * qStride);
  const qsl = [0];
  seqLens.forEach((n, s) => {
    q.set(rowsQ[s].subarray((n - qLens[s]) * qStride, n * qStride), qsl[s] * qStride);
    qsl.push(qsl[s] + qLens[s]);
  });
  const out = T.empty(o, [numTokens, heads * L.D], DType.F32);
  const scale = 1 / Math.sqrt(L.D);
  const rc2 = o.attention(out.addr, f32(o, q).addr, kCache.addr, vCache.addr, i32(o, qsl).addr, i32(o, seqLens).addr, i32(o, table).addr, seqLens.length, numTokens, Math.max(...qLens), Math.max(...seqLens), heads, L.kvHeads, L.D, L.blockSize, maxBlocks, qStride, scale, c.window, c.softCap, DType.F32);
  assert.equal(rc2, 0, o.lastError());

  // reference: straight from the per-sequence key/value rows, in f64
  const want = new Float64Array(numTokens * heads * L.D);
  const group = heads / L.kvHeads;
  seqLens.forEach((n, s) => {
    for (let j = 0; j < qLens[s]; j++) {
      const tok = qsl[s] + j;
      const pos = n - qLens[s] + j;
      const lo = c.window > 0 ? Math.max(0, pos - c.window + 1) : 0;
      for (let h = 0; h < heads; h++) {
        const kvh = Math.floor(h / group);
        const scores: number[] = [];
        for (let p = lo; p <= pos; p++) {
          let sc = 0;
          for (let d = 0; d < L.D; d++) sc += q[tok * qStride + h * L.D + d] * rowsK[s][p * width + kvh * L.D + d];
          sc *= scale;
          if (c.softCap > 0) sc = c.softCap * Math.tanh(sc / c.softCap);
          scores.push(sc);
        }
        const m = Math.max(...scores);
        const e = scores.map((x) => Math.exp(x - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let d = 0; d < L.D; d++) {
          let acc = 0;
          for (let p = lo; p <= pos; p++) acc += (e[p - lo] / z) * rowsV[s][p * width + kvh * L.D + d];
          want[(tok * heads + h) * L.D + d] = acc;
        }
      }
    }
  });
  return { out, want, kCache, vCache, table, rowsK, rowsV, maxBlocks };
}

test('reshape_and_cache writes each row at its slot and skips negative slots', () => {
  const L = { numBlocks: 13, blockSize: 5, kvHeads: 2, D: 40 };
  const { kCache, vCache, table, rowsK, rowsV, maxBlocks } = runAttention(ops, { heads: 2, L, seqLens: [11, 7], qLens: [1, 7], window: 0, softCap: 0 }, 21);
  const k = kCache.toF32();
  const v = vCache.toF32();
  const width = L.kvHeads * L.D;
  const written = new Set<number>();
  [11, 7].forEach((n, s) => {
    for (let p = 0; p < n; p++) {
      const slot = table[s * maxBlocks + Math.floor(p / L.blockSize)] * L.blockSize + (p % L.blockSize);
      written.add(slot);
      assert.deepEqual(k.subarray(slot * width, (slot + 1) * width), rowsK[s].subarray(p * width, (p + 1) * width));
      assert.deepEqual(v.subarray(slot * width, (slot + 1) * width), rowsV[s].subarray(p * width, (p + 1) * width));
    }
  });
  // padding rows (slot -1, filled with 99 / -99) went nowhere: every other slot is still zero
  for (let slot = 0; slot < L.numBlocks * L.blockSize; slot++)
    if (!written.has(slot)) for (let i = 0; i < width; i++) assert.equal(k[slot * width + i] + v[slot * width + i], 0);
});

// decode row (ctx 37), fresh prefill (23), chunked prefill (13 queries after 37 cached)
const MIXED = { seqLens: [37, 23, 50], qLens: [1, 23, 13] };

test('attention: decode, prefill and chunked prefill in one batch, GQA / MQA / MHA, odd sizes', () => {
  const cases: [string, Case][] = [
    ['GQA 3:1 D=40 bs=16', { heads: 6, L: { numBlocks: 20, blockSize: 16, kvHeads: 2, D: 40 }, ...MIXED, window: 0, softCap: 0 }],
    ['MQA D=64 bs=5', { heads: 4, L: { numBlocks: 40, blockSize: 5, kvHeads: 1, D: 64 }, ...MIXED, window: 0, softCap: 0 }],
    ['MHA D=32 bs=7', { heads: 3, L: { numBlocks: 30, blockSize: 7, kvHeads: 3, D: 32 }, ...MIXED, window: 0, softCap: 0 }],
    ['GQA D=128 bs=16', { heads: 4, L: { numBlocks: 20, blockSize: 16, kvHeads: 2, D: 128 }, ...MIXED, window: 0, softCap: 0 }],
    ['sliding window 7', { heads: 6, L: { numBlocks: 40, blockSize: 5, kvHeads: 2, D: 40 }, ...MIXED, window: 7, softCap: 0 }],
    ['MHA D=264 (past the register-resident sizes)', { heads: 2, L: { numBlocks: 12, blockSize: 16, kvHeads: 2, D: 264 }, ...MIXED, window: 0, softCap: 0 }],
    ['soft cap 5, window 20', { heads: 4, L: { numBlocks: 20, blockSize: 16, kvHeads: 4, D: 64 }, ...MIXED, window: 20, softCap: 5 }],
  ];
  cases.forEach(([name, c], i) => {
    const { out, want } = runAttention(ops, c, 30 + i);
    assertClose(out.toF32(), want, `attention ${name}`);
  });
});

test('attention: a row gives the same bits alone, batched, in chunks, whatever its blocks', () => {
  const L = { numBlocks: 40, blockSize: 16, kvHeads: 2, D: 40 };
  const base = { heads: 6, L, window: 0, softCap: 0 };
  const w = 6 * 40;
  const whole = runAttention(ops, { ...base, seqLens: [50], qLens: [50] }, 40).out.toF32();
  const last13 = runAttention(ops, { ...base, seqLens: [50], qLens: [13] }, 40).out.toF32();
  const decode = runAttention(ops, { ...base, seqLens: [50], qLens: [1] }, 40).out.toF32();
  const batched = runAttention(ops, { ...base, seqLens: [50, 9, 30], qLens: [13, 9, 1] }, 40).out.toF32();
  assert.deepEqual(last13, whole.subarray(37 * w), 'chunk vs whole prompt');
  assert.deepEqual(decode, whole.subarray(49 * w), 'decode row vs whole prompt');
  assert.deepEqual(batched.subarray(0, 13 * w), last13, 'batched vs alone (other block tables too)');
});

test('attention: 1 and 2 threads give identical bits', () => {
  const c: Case = { heads: 6, L: { numBlocks: 20, blockSize: 16, kvHeads: 2, D: 40 }, ...MIXED, window: 0, softCap: 0 };
  sameBitsOneAndTwoThreads((o) => runAttention(o, c, 50).out.toF32(), 'attention');
  cpu(2);
});

test('qk_norm_rope: per-head RMSNorm of q and k (weights, Gemma offset), then the rotation, on fused qkv rows', () => {
  const r = rng(31);
  const [tokens, heads, kvHeads, eps] = [4, 4, 2, 1e-6];
  for (const [D, rot, neox, offset] of [[64, 64, true, 0], [32, 16, false, 1]] as const) {
    const stride = (heads + 2 * kvHeads) * D;
    const qkv = randn(r, tokens * stride, 2);
    const qw = randn(r, D), kw = randn(r, D);
    const pos = [3, 0, 17, 60];
    const cache = cosSinCache(64, rot);
    // Reference: each q/k head normalized (f64), then the rope reference on the result.
    const normed = Float32Array.from(qkv);
    for (let t = 0; t < tokens; t++)
      for (let h = 0; h < heads + kvHeads; h++) {
        const base = t * stride + h * D, w = h < heads ? qw : kw;
        let ss = 0;
        for (let i = 0; i < D; i++) ss += qkv[base + i] ** 2;
        const inv = 1 / Math.sqrt(ss / D + eps);
        for (let i = 0; i < D; i++) normed[base + i] = qkv[base + i] * inv * (w[i] + offset);
      }
    const want = refRope(normed, tokens, stride, heads + kvHeads, D, rot, pos, cache, neox);
    const buf = f32(ops, qkv);
    const rc = ops.qkNormRope(buf.addr, buf.addr + heads * D * 4, f32(ops, qw).addr, f32(ops, kw).addr, i32(ops, pos).addr, f32(ops, cache).addr,
      tokens, heads, kvHeads, D, rot, stride, stride, eps, offset, neox ? 1 : 0, DType.F32, DType.F32);
    assert.equal(rc, 0, ops.lastError());
    assertClose(buf.toF32(), want, `qk_norm_rope D=${D} rot=${rot} neox=${neox} offset=${offset}`, 1e-5);
    // v (the kvHeads heads after k) is untouched.
    for (let t = 0; t < tokens; t++)
      for (let i = (heads + kvHeads) * D; i < stride; i++) assert.equal(buf.toF32()[t * stride + i], qkv[t * stride + i]);
  }
  // The same bits as vt_rms_norm over each head followed by vt_rope (the two-call path).
  const [D, rot] = [64, 64];
  const q = randn(r, 3 * heads * D), k = randn(r, 3 * kvHeads * D), qw = randn(r, D), kw = randn(r, D);
  const cache = f32(ops, cosSinCache(16, rot)), pos = i32(ops, [1, 5, 9]);
  const fq = f32(ops, q), fk = f32(ops, k), sq = f32(ops, q), sk = f32(ops, k), tqw = f32(ops, qw), tkw = f32(ops, kw);
  assert.equal(ops.qkNormRope(fq.addr, fk.addr, tqw.addr, tkw.addr, pos.addr, cache.addr, 3, heads, kvHeads, D, rot, heads * D, kvHeads * D,
    1e-6, 0, 1, DType.F32, DType.F32), 0, ops.lastError());
  assert.equal(ops.rmsNorm(sq.addr, sq.addr, 0, tqw.addr, 3 * heads, D, 1e-6, 0, DType.F32, DType.F32), 0);
  assert.equal(ops.rmsNorm(sk.addr, sk.addr, 0, tkw.addr, 3 * kvHeads, D, 1e-6, 0, DType.F32, DType.F32), 0);
  assert.equal(ops.rope(sq.addr, sk.addr, pos.addr, cache.addr, 3, heads, kvHeads, D, rot, heads * D, kvHeads * D, 1, DType.F32), 0);
  assert.deepEqual(fq.toF32(), sq.toF32());
  assert.deepEqual(fk.toF32(), sk.toF32());
  assert.notEqual(ops.qkNormRope(fq.addr, fk.addr, tqw.addr, tkw.addr, pos.addr, cache.addr, 3, heads, kvHeads, D, 65, heads * D, kvHeads * D,
    1e-6, 0, 1, DType.F32, DType.F32), 0);
  assert.match(ops.lastError(), /rotary_dim 65/);
});

test('attention and rope errors name the problem', () => {
  const x = f32(ops, new Float32Array(64));
  const a = x.addr;
  assert.notEqual(ops.attention(a, a, a, a, a, a, a, 1, 1, 1, 1, 6, 4, 8, 16, 1, 48, 1, 0, 0, DType.F32), 0);
  assert.match(ops.lastError(), /num_heads 6 is not a multiple of num_kv_heads 4/);
  assert.notEqual(ops.attention(a, a, a, a, a, a, a, 1, 1, 1, 1, 4, 4, 8, 16, 1, 32, 1, 0, 0, DType.BF16), 0);
  assert.match(ops.lastError(), /vt_attention.*bf16/);
  assert.notEqual(ops.rope(a, a, a, a, 1, 1, 1, 8, 9, 8, 8, 1, DType.F32), 0);
  assert.match(ops.lastError(), /rotary_dim 9/);
});

test('attention: long contexts (several segments): decode = prefill bits, vs reference', () => {
  const cases: [string, Case][] = [
    ['GQA 3:1 D=64', { heads: 6, L: { numBlocks: 80, blockSize: 16, kvHeads: 2, D: 64 }, seqLens: [300, 270, 140], qLens: [1, 40, 1], window: 0, softCap: 0 }],
    ['nowin D=40 bs5', { heads: 4, L: { numBlocks: 200, blockSize: 5, kvHeads: 2, D: 40 }, seqLens: [300, 270, 140], qLens: [1, 40, 1], window: 0, softCap: 0 }],
    ['win bs16 D=40', { heads: 4, L: { numBlocks: 120, blockSize: 16, kvHeads: 2, D: 40 }, seqLens: [300, 270, 140], qLens: [1, 40, 1], window: 150, softCap: 0 }],
    ['win only seq2', { heads: 4, L: { numBlocks: 200, blockSize: 5, kvHeads: 2, D: 40 }, seqLens: [140], qLens: [1], window: 150, softCap: 0 }],
    ['window 150 D=40', { heads: 4, L: { numBlocks: 200, blockSize: 5, kvHeads: 2, D: 40 }, seqLens: [300, 270, 140], qLens: [1, 40, 1], window: 150, softCap: 0 }],
    ['MHA D=264 softcap', { heads: 2, L: { numBlocks: 80, blockSize: 16, kvHeads: 2, D: 264 }, seqLens: [300, 260, 129], qLens: [1, 40, 1], window: 0, softCap: 5 }],
    ['MQA 10 heads D=24', { heads: 10, L: { numBlocks: 120, blockSize: 7, kvHeads: 1, D: 24 }, seqLens: [257, 256, 128], qLens: [1, 40, 1], window: 0, softCap: 0 }],
  ];
  cases.forEach(([name, c], i) => {
    const { out, want } = runAttention(ops, c, 70 + i);
    try { assertClose(out.toF32(), want, `attention ${name}`); console.log('ok', name); } catch (e) { console.log('FAIL', name, String(e).slice(0, 200)); }
  });
  for (const [name, c] of cases) {
    const n = c.seqLens[0];
    const w = c.heads * c.L.D;
    const whole = runAttention(ops, { ...c, seqLens: [n], qLens: [n] }, 90).out.toF32();
    const chunk = runAttention(ops, { ...c, seqLens: [n], qLens: [37] }, 90).out.toF32();
    const decode = runAttention(ops, { ...c, seqLens: [n], qLens: [1] }, 90).out.toF32();
    assert.deepEqual(decode, whole.subarray((n - 1) * w), `${name}: decode row vs whole prompt`);
    assert.deepEqual(chunk, whole.subarray((n - 37) * w), `${name}: chunk vs whole prompt`);
    const d1 = sameBitsOneAndTwoThreads((o) => runAttention(o, { ...c, seqLens: [n, 200], qLens: [1, 1] }, 91).out.toF32(), name);
    cpu(2);
  }
});
