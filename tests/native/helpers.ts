// Shared by the native CPU op tests: the library, seeded random inputs, weights
// stored as f32 / f16 / bf16 (with the f32 values the same bits widen to), and a
// scale-relative closeness check.
import assert from 'node:assert/strict';

import { DType, type NativeOps, Tensor, bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, loadNative } from '../../src/native/index.js';

export { DType, Tensor };

let native: NativeOps | undefined;
/** The CPU library, its pool started with `threads` workers. */
export function cpu(threads = 2): NativeOps {
  native ??= loadNative('cpu');
  assert.equal(native.init(0, threads), 0, native.lastError());
  return native;
}

/** mulberry32: a small seeded generator for test inputs. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n uniform values in [-scale, scale). */
export function randn(r: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (2 * r() - 1) * scale;
  return out;
}

export const WEIGHT_DTYPES = [DType.F32, DType.F16, DType.BF16] as const;

/** A weight tensor in `dtype` and the f32 values its stored bits stand for. */
export function weight(ops: NativeOps, values: Float32Array, shape: number[], dtype: DType): { t: Tensor; ref: Float32Array } {
  if (dtype === DType.F32) return { t: Tensor.fromF32(ops, values, shape), ref: values };
  const bits = dtype === DType.BF16 ? f32ToBf16(values) : f32ToF16(values);
  return { t: Tensor.fromHost(ops, bits, shape, dtype), ref: dtype === DType.BF16 ? bf16ToF32(bits) : f16ToF32(bits) };
}

export const f32 = (ops: NativeOps, data: Float32Array, shape: number[] = [data.length]) => Tensor.fromF32(ops, data, shape);
export const i32 = (ops: NativeOps, data: number[] | Int32Array) => Tensor.fromI32(ops, Int32Array.from(data), [data.length]);

/** max |actual - expected| <= tol * max(|expected|, 1e-6 floor). */
export function assertClose(actual: Float32Array, expected: ArrayLike<number>, what: string, tol = 1e-4): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let scale = 1e-6;
  let err = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    scale = Math.max(scale, Math.abs(expected[i]));
    const e = Math.abs(actual[i] - expected[i]);
    if (!(e <= err)) {
      err = e;
      at = i;
    }
  }
  assert.ok(err <= tol * scale, `${what}: max abs error ${err} at ${at} (got ${actual[at]}, want ${expected[at]}) > ${tol} x scale ${scale}`);
}

/** Runs `fn` with 1 and with 2 threads and checks both give the same bits. */
export function sameBitsOneAndTwoThreads(fn: (ops: NativeOps) => Float32Array, what: string): void {
  const one = fn(cpu(1));
  const two = fn(cpu(2));
  assert.deepEqual(new Uint32Array(two.buffer, two.byteOffset, two.length), new Uint32Array(one.buffer, one.byteOffset, one.length), `${what}: 1 vs 2 threads`);
}
