// CPU vt_rope_and_cache / vt_qk_norm_rope_and_cache: exactly vt_rope (or vt_qk_norm_rope)
// then vt_reshape_and_cache, bit for bit, on q/k/v views into fused qkv rows and apart.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { DType, cpu, f32, i32, randn, rng, sameBitsOneAndTwoThreads, weight } from './helpers.js';
import type { NativeOps, Tensor } from '../../src/native/index.js';
import { ropeCosSin } from '../helpers/rope.js';

const ops = cpu(2);

interface Case {
  T: number;
  H: number;
  KV: number;
  D: number;
  rot: number;
  neox: boolean;
  /** q, k, v as views into one [T, (H + 2 KV) * D] row (else three contiguous tensors). */
  fusedRows: boolean;
  /** Per-head q/k RMSNorm first (vt_qk_norm_rope): the weights' dtype and offset. */
  norm: { wdt: DType; offset: number } | null;
}

/** The inputs of one case: q, k, v (one buffer or three), caches with old contents, slots with padding (-1). */
function inputs(o: NativeOps, c: Case, seed: number) {
  const r = rng(seed);
  const { T, H, KV, D } = c;
  const numSlots = 8 * 4; // 8 blocks of 4
  const w = c.fusedRows ? (H + 2 * KV) * D : 0;
  const rows = c.fusedRows ? [randn(r, T * w, 2)] : [randn(r, T * H * D, 2), randn(r, T * KV * D, 2), randn(r, T * KV * D, 2)];
  const perm = [...Array(numSlots).keys()].sort(() => r() - 0.5);
  const slots = Array.from({ length: T }, (_, t) => (t % 3 === 1 ? -1 : perm[t]));
  const pos = Array.from({ length: T }, () => Math.floor(r() * 50));
  const kc = randn(r, numSlots * KV * D), vc = randn(r, numSlots * KV * D);
  const qw = randn(r, D), kw = randn(r, D);
  return () => {
    const bufs = rows.map((x) => f32(o, x));
    const el = 4;
    const [q, k, v] = c.fusedRows
      ? [{ addr: bufs[0].addr, stride: w }, { addr: bufs[0].addr + H * D * el, stride: w }, { addr: bufs[0].addr + (H + KV) * D * el, stride: w }]
      : [{ addr: bufs[0].addr, stride: H * D }, { addr: bufs[1].addr, stride: KV * D }, { addr: bufs[2].addr, stride: KV * D }];
    const wdt = c.norm?.wdt ?? DType.F32;
    return {
      bufs, q, k, v, kc: f32(o, kc), vc: f32(o, vc), slots: i32(o, slots), pos: i32(o, pos), cs: f32(o, ropeCosSin(64, c.rot)),
      qw: weight(o, qw, [D], wdt).t, kw: weight(o, kw, [D], wdt).t,
    };
  };
}

const bits = (t: Tensor) => new Uint32Array(t.toF32().buffer);

/** Runs the two-call path and the fused op on the same inputs; returns both results (rows, caches) as bits. */
function runBoth(o: NativeOps, c: Case, seed: number): { two: Uint32Array[]; fused: Uint32Array[] } {
  const make = inputs(o, c, seed);
  const { T, H, KV, D, rot } = c;
  const neox = c.neox ? 1 : 0, eps = 1e-6, off = c.norm?.offset ?? 0, wdt = c.norm?.wdt ?? DType.F32;
  const a = make();
  if (c.norm) {
    assert.equal(o.qkNormRope(a.q.addr, a.k.addr, a.qw.addr, a.kw.addr, a.pos.addr, a.cs.addr, T, H, KV, D, rot, a.q.stride, a.k.stride, eps,
      off, neox, wdt, DType.F32), 0, o.lastError());
  } else {
    assert.equal(o.rope(a.q.addr, a.k.addr, a.pos.addr, a.cs.addr, T, H, KV, D, rot, a.q.stride, a.k.stride, neox, DType.F32), 0, o.lastError());
  }
  assert.equal(o.reshapeAndCache(a.k.addr, a.v.addr, a.kc.addr, a.vc.addr, a.slots.addr, T, KV, D, a.k.stride, a.v.stride, DType.F32), 0,
    o.lastError());
  const b = make();
  const rc = c.norm
    ? o.qkNormRopeAndCache(b.q.addr, b.k.addr, b.v.addr, b.qw.addr, b.kw.addr, b.pos.addr, b.cs.addr, b.kc.addr, b.vc.addr, b.slots.addr, T, H,
      KV, D, rot, b.q.stride, b.k.stride, b.v.stride, eps, off, neox, wdt, DType.F32)
    : o.ropeAndCache(b.q.addr, b.k.addr, b.v.addr, b.pos.addr, b.cs.addr, b.kc.addr, b.vc.addr, b.slots.addr, T, H, KV, D, rot, b.q.stride,
      b.k.stride, b.v.stride, neox, DType.F32);
  assert.equal(rc, 0, o.lastError());
  const out = (x: ReturnType<typeof make>) => [...x.bufs.map(bits), bits(x.kc), bits(x.vc)];
  return { two: out(a), fused: out(b) };
}

const CASES: [string, Case][] = [];
for (const norm of [null, { wdt: DType.F32, offset: 0 }, { wdt: DType.BF16, offset: 1 }])
  for (const neox of [true, false])
    for (const [H, KV, D, rot, fusedRows] of [[6, 2, 64, 64, true], [4, 1, 32, 16, true], [3, 3, 40, 40, false]] as const) {
      const name = `${norm ? `qk_norm(${DType[norm.wdt]}, +${norm.offset})` : 'rope'} ${neox ? 'neox' : 'gptj'} H=${H} KV=${KV} D=${D} rot=${rot} ${fusedRows ? 'qkv rows' : 'apart'}`;
      CASES.push([name, { T: 7, H, KV, D, rot, neox, fusedRows, norm }]);
    }

test('rope_and_cache, qk_norm_rope_and_cache: the bits of the op then reshape_and_cache (GQA/MQA, partial rotary, padding slots, strides)', () => {
  CASES.forEach(([name, c], i) => {
    const { two, fused } = runBoth(ops, c, 100 + i);
    const what = [...(c.fusedRows ? ['qkv rows'] : ['q', 'k', 'v']), 'k_cache', 'v_cache'];
    two.forEach((want, j) => assert.deepEqual(fused[j], want, `${name}: ${what[j]}`));
  });
});

test('rope_and_cache: the cache row of a padding token (slot -1) and unmapped slots keep their old contents', () => {
  const c: Case = { T: 4, H: 2, KV: 2, D: 8, rot: 8, neox: true, fusedRows: true, norm: null };
  const x = inputs(ops, c, 7)();
  const before = x.kc.toF32();
  const vBefore = x.vc.toF32();
  const slots = [5, -1, 0, 31];
  const sl = i32(ops, slots);
  assert.equal(ops.ropeAndCache(x.q.addr, x.k.addr, x.v.addr, x.pos.addr, x.cs.addr, x.kc.addr, x.vc.addr, sl.addr, 4, 2, 2, 8, 8, x.q.stride,
    x.k.stride, x.v.stride, 1, DType.F32), 0, ops.lastError());
  const after = x.kc.toF32(), vAfter = x.vc.toF32(), row = x.bufs[0].toF32();
  const W = 2 * 8, stride = (2 + 4) * 8;
  for (let s = 0; s < 32; s++) {
    const t = slots.indexOf(s);
    for (let i = 0; i < W; i++) {
      assert.equal(after[s * W + i], t < 0 ? before[s * W + i] : row[t * stride + 2 * 8 + i], `k slot ${s}`);
      assert.equal(vAfter[s * W + i], t < 0 ? vBefore[s * W + i] : row[t * stride + 4 * 8 + i], `v slot ${s}`);
    }
  }
});

test('rope_and_cache ops: 1 and 2 threads give the same bits', () => {
  const c = CASES.find(([n]) => n.startsWith('qk_norm(F32') && n.includes('H=6'))![1];
  sameBitsOneAndTwoThreads((o) => Float32Array.from(runBoth(o, { ...c, T: 30 }, 9).fused.flatMap((b) => [...new Float32Array(b.buffer)])), 'qk_norm_rope_and_cache');
  cpu(2);
});

test('rope_and_cache ops: errors name the problem', () => {
  const x = inputs(ops, CASES[0][1], 3)();
  const { q, k, v } = x;
  assert.notEqual(ops.ropeAndCache(q.addr, k.addr, v.addr, x.pos.addr, x.cs.addr, x.kc.addr, x.vc.addr, x.slots.addr, 7, 6, 2, 64, 64, q.stride,
    k.stride, 100, 1, DType.F32), 0);
  assert.match(ops.lastError(), /vt_rope_and_cache: v row stride 100/);
  assert.notEqual(ops.ropeAndCache(q.addr, k.addr, v.addr, x.pos.addr, x.cs.addr, 0, x.vc.addr, x.slots.addr, 7, 6, 2, 64, 64, q.stride, k.stride,
    v.stride, 1, DType.F32), 0);
  assert.match(ops.lastError(), /vt_rope_and_cache: a required tensor address is null/);
  assert.notEqual(ops.qkNormRopeAndCache(q.addr, k.addr, v.addr, x.qw.addr, x.kw.addr, x.pos.addr, x.cs.addr, x.kc.addr, x.vc.addr, x.slots.addr,
    7, 6, 2, 64, 65, q.stride, k.stride, v.stride, 1e-6, 0, 1, DType.F32, DType.F32), 0);
  assert.match(ops.lastError(), /vt_qk_norm_rope_and_cache: rotary_dim 65/);
  assert.notEqual(ops.ropeAndCache(q.addr, k.addr, v.addr, x.pos.addr, x.cs.addr, x.kc.addr, x.vc.addr, x.slots.addr, 7, 6, 2, 64, 64, q.stride,
    k.stride, v.stride, 1, DType.BF16), 0);
  assert.match(ops.lastError(), /vt_rope_and_cache/);
});
