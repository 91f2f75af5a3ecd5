// CPU library runtime: identity, memory, conversions, the random fill, errors.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../src/native/dtype.js';
import { DType, Tensor, cpu, f32, randn, rng } from './helpers.js';

test('identity, device description and memory info', () => {
  const ops = cpu(2);
  assert.equal(ops.backendName(), 'cpu');
  assert.equal(ops.deviceCount(), 1);
  assert.equal(ops.numThreads(), 2);
  assert.match(ops.deviceName(), /AVX-512|AVX2|scalar/);
  assert.match(ops.deviceName(), /2 threads/);
  const free = new BigUint64Array(1);
  const total = new BigUint64Array(1);
  assert.equal(ops.memInfo(free, total), 0);
  assert.ok(total[0] > 0n && free[0] > 0n && free[0] <= total[0]);
  assert.equal(ops.synchronize(), 0);
});

test('init starts, resizes and restarts the thread pool', () => {
  const ops = cpu(1);
  assert.equal(ops.numThreads(), 1);
  assert.equal(ops.init(0, 0), 0, 'num_threads <= 0: one per core');
  assert.ok(ops.numThreads() >= 1);
  for (const n of [3, 1, 2, 2]) {
    assert.equal(ops.init(0, n), 0);
    assert.equal(ops.numThreads(), n);
    // an op big enough to wake the pool still runs right after a resize
    const a = randn(rng(n), 100000);
    const o = Tensor.empty(ops, [a.length], DType.F32);
    const t = f32(ops, a);
    assert.equal(ops.add(o.addr, t.addr, t.addr, a.length, DType.F32), 0);
    assert.deepEqual(o.toF32(), a.map((v) => 2 * v));
  }
});

test('malloc is 64-byte aligned; copies and memset move the bytes', () => {
  const ops = cpu(2);
  for (const bytes of [1, 100, 4096, 5 << 20]) {
    const a = ops.malloc(bytes);
    assert.ok(a !== 0 && a % 64 === 0, `malloc(${bytes}) = ${a}`);
    assert.equal(ops.free(a), 0);
  }
  const src = randn(rng(1), 37);
  const a = f32(ops, src);
  const b = Tensor.empty(ops, [37], DType.F32);
  assert.equal(ops.copyD2D(b.addr, a.addr, 37 * 4), 0);
  assert.deepEqual(b.toF32(), src);
  assert.equal(ops.memset(b.addr, 0, 37 * 4), 0);
  assert.deepEqual(b.toF32(), new Float32Array(37));
  a.dispose();
  b.dispose();
});

test('convert between f32, f16 and bf16 rounds to nearest even', () => {
  const ops = cpu(2);
  const vals = randn(rng(2), 1001, 70000); // beyond f16's range too
  vals.set([0, -0, 1e-8, 6e-5, 65504, 65520, Infinity, -Infinity, NaN], 0);
  const src = f32(ops, vals);
  for (const [dt, toBits, toF32] of [
    [DType.BF16, f32ToBf16, bf16ToF32],
    [DType.F16, f32ToF16, f16ToF32],
  ] as const) {
    const half = Tensor.empty(ops, [vals.length], dt);
    assert.equal(ops.convert(half.addr, dt, src.addr, DType.F32, vals.length), 0);
    const bits = new Uint16Array(half.toBytes().buffer);
    assert.deepEqual(bits, toBits(vals), `f32 -> ${DType[dt]}`);
    const back = Tensor.empty(ops, [vals.length], DType.F32);
    assert.equal(ops.convert(back.addr, DType.F32, half.addr, dt, vals.length), 0);
    assert.deepEqual(back.toF32(), toF32(bits), `${DType[dt]} -> f32`);
  }
  // every f16 bit pattern widens exactly
  const all = new Uint16Array(65536).map((_, i) => i);
  const h = Tensor.fromHost(ops, all, [65536], DType.F16);
  const w = Tensor.empty(ops, [65536], DType.F32);
  assert.equal(ops.convert(w.addr, DType.F32, h.addr, DType.F16, 65536), 0);
  // (NaN payloads are kept by the library and dropped by dtype.ts: compare as values)
  assert.deepEqual(Array.from(w.toF32()), Array.from(f16ToF32(all)));
});

// Independent reference of the documented generator (BigInt arithmetic).
function fillReference(n: number, seed: bigint, scale: number): Float32Array {
  const M = (1n << 64n) - 1n;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let z = (seed + BigInt(i) * 0x9e3779b97f4a7c15n + 0x9e3779b97f4a7c15n) & M;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
    z ^= z >> 31n;
    const u = Number(z >> 40n) / 2 ** 24;
    out[i] = Math.fround(Math.fround(2 * u - 1) * Math.fround(scale));
  }
  return out;
}

test('fill_random follows the documented counter-based generator', () => {
  const ops = cpu(2);
  const n = 5000;
  const scale = 0.02;
  const want = fillReference(n, 1234n, scale);
  for (const dt of [DType.F32, DType.BF16, DType.F16]) {
    const t = Tensor.empty(ops, [n], dt);
    assert.equal(ops.fillRandom(t.addr, dt, n, 1234, scale), 0);
    const got = t.toF32();
    const exp = dt === DType.F32 ? want : dt === DType.BF16 ? bf16ToF32(f32ToBf16(want)) : f16ToF32(f32ToF16(want));
    assert.deepEqual(got, exp, DType[dt]);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of got) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const bound = scale * (dt === DType.F32 ? 1 : 1 + 2 ** -8); // a 16-bit rounding may reach past scale
    assert.ok(lo >= -bound && hi <= bound && lo < -0.9 * scale && hi > 0.9 * scale, `${DType[dt]} range [${lo}, ${hi}]`);
  }
  const a = Tensor.empty(ops, [n], DType.F32);
  const b = Tensor.empty(ops, [n], DType.F32);
  ops.fillRandom(a.addr, DType.F32, n, 7, 1);
  ops.fillRandom(b.addr, DType.F32, n, 7, 1);
  assert.deepEqual(a.toF32(), b.toF32(), 'same seed, same values');
  ops.fillRandom(b.addr, DType.F32, n, 8, 1);
  assert.notDeepEqual(a.toF32(), b.toF32(), 'another seed, other values');
  // The same seed gives the same values on 1 thread.
  const c = Tensor.empty(cpu(1), [n], DType.F32);
  ops.fillRandom(c.addr, DType.F32, n, 7, 1);
  assert.deepEqual(c.toF32(), a.toF32());
  cpu(2);
});

test('errors: non-f32 activations and bad dtypes fail with a message', () => {
  const ops = cpu(2);
  const x = f32(ops, new Float32Array(8));
  assert.notEqual(ops.add(x.addr, x.addr, x.addr, 8, DType.BF16), 0);
  assert.match(ops.lastError(), /vt_add.*activation dtype bf16.*f32/);
  assert.notEqual(ops.linear(x.addr, x.addr, x.addr, 0, 1, 2, 4, DType.F32, DType.F16), 0);
  assert.match(ops.lastError(), /vt_linear.*activation dtype f16/);
  assert.notEqual(ops.linear(x.addr, x.addr, x.addr, 0, 1, 2, 4, DType.I32, DType.F32), 0);
  assert.match(ops.lastError(), /vt_linear.*weight dtype i32/);
  assert.notEqual(ops.convert(x.addr, DType.U8, x.addr, DType.F32, 8), 0);
  assert.match(ops.lastError(), /vt_convert.*u8/);
  assert.notEqual(ops.init(1, 2), 0);
  assert.match(ops.lastError(), /one device/);
  assert.equal(ops.add(x.addr, x.addr, x.addr, 8, DType.F32), 0);
});
