import { join } from 'node:path';
// Shared by the GPU parity tests: why a test must be skipped, random data, tensors
// on both libraries holding the same values, and the error table.
import { writeFileSync } from 'node:fs';
import {
  type NativeOps,
  DType,
  Tensor,
  check,
  f32ToBf16,
  f32ToF16,
  bf16ToF32,
  f16ToF32,
  isAvailable,
  libraryPath,
  loadNative,
} from '../../src/native/index.js';

export { DType, Tensor, check };
export type { NativeOps };

/** A reason to skip the GPU tests, or false when the CUDA library and a GPU are there. */
export function gpuSkipReason(): string | false {
  if (!isAvailable('cuda')) return `no GPU: ${libraryPath('cuda')} is missing (npm run build:cuda)`;
  if (!isAvailable('cpu')) return `the CPU twin ${libraryPath('cpu')} is missing (npm run build:native)`;
  try {
    if (loadNative('cuda').deviceCount() === 0) return 'no GPU: the CUDA library sees no device';
  } catch (e) {
    return `the CUDA library does not load: ${(e as Error).message}`;
  }
  return false;
}

export interface Libs {
  cpu: NativeOps;
  cuda: NativeOps;
}

let libs: Libs | undefined;
export function openLibs(): Libs {
  if (libs) return libs;
  const cpu = loadNative('cpu');
  const cuda = loadNative('cuda');
  check(cpu, cpu.init(0, 0), 'cpu init');
  check(cuda, cuda.init(0, 0), 'cuda init');
  libs = { cpu, cuda };
  return libs;
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

/** n uniform values in [-scale, scale), already representable in dtype dt. */
export function randomValues(next: () => number, n: number, dt: DType, scale = 1): Float32Array {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = (2 * next() - 1) * scale;
  return roundTo(v, dt);
}

export function roundTo(v: Float32Array, dt: DType): Float32Array {
  if (dt === DType.BF16) return bf16ToF32(f32ToBf16(v));
  if (dt === DType.F16) return f16ToF32(f32ToF16(v));
  return Float32Array.from(v);
}

export function bitsOf(v: Float32Array, dt: DType): ArrayBufferView {
  if (dt === DType.BF16) return f32ToBf16(v);
  if (dt === DType.F16) return f32ToF16(v);
  return v;
}

/** The same values on the CPU (f32) and on the GPU (in dtype dt). */
export class Pair {
  constructor(readonly cpu: Tensor, readonly gpu: Tensor) {}

  static of(l: Libs, v: Float32Array, dt: DType): Pair {
    return new Pair(Tensor.fromF32(l.cpu, v, [v.length]), Tensor.fromHost(l.cuda, bitsOf(v, dt), [v.length], dt));
  }

  /** Outputs: zeros on the CPU, NaN bits (0xff bytes) on the GPU so that unwritten elements show. */
  static out(l: Libs, n: number, dt: DType): Pair {
    const gpu = Tensor.empty(l.cuda, [n], dt);
    check(l.cuda, l.cuda.memset(gpu.addr, 0xff, gpu.nbytes), 'memset');
    return new Pair(Tensor.zeros(l.cpu, [n], DType.F32), gpu);
  }

  static i32(l: Libs, v: Int32Array): Pair {
    return new Pair(Tensor.fromI32(l.cpu, v, [v.length]), Tensor.fromI32(l.cuda, v, [v.length]));
  }

  dispose(): void {
    this.cpu.dispose();
    this.gpu.dispose();
  }
}

/** max |gpu - cpu| / max |cpu| (Infinity when the GPU gave NaN or lengths differ). */
export function relErr(gpu: Float32Array, ref: Float32Array): number {
  if (gpu.length !== ref.length) return Infinity;
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(gpu[i] - ref[i]);
    if (Number.isNaN(d)) return Infinity;
    num = Math.max(num, d);
    den = Math.max(den, Math.abs(ref[i]));
  }
  return num / Math.max(den, 1e-30);
}

export { ropeCosSin } from '../helpers/rope.js';

export const DTYPES: DType[] = [DType.BF16, DType.F16, DType.F32];
/** Tolerances on relErr: a few units of the dtype's last place. */
export const TOL: Record<number, number> = { [DType.BF16]: 2e-2, [DType.F16]: 4e-3, [DType.F32]: 2e-4 };

export interface Row {
  op: string;
  case: string;
  dtype: string;
  maxRelErr: number;
  tol: number;
}
export const rows: Row[] = [];

/** Records one comparison and returns whether it is within tolerance. */
export function record(op: string, name: string, dt: DType, err: number, tol = TOL[dt]): boolean {
  rows.push({ op, case: name, dtype: DType[dt], maxRelErr: err, tol });
  return err <= tol;
}

/** Prints the per-op maximum and writes every row to $VLLM_TS_GPU_REPORT/ops.json (a folder). */
export function report(device: string): void {
  const worst = new Map<string, Row>();
  for (const r of rows) {
    const key = `${r.op} ${r.dtype}`;
    const w = worst.get(key);
    if (!w || r.maxRelErr > w.maxRelErr || Number.isNaN(r.maxRelErr)) worst.set(key, r);
  }
  const lines = [...worst.values()].map(
    (r) => `${r.op.padEnd(22)} ${r.dtype.padEnd(5)} ${r.maxRelErr.toExponential(2).padStart(9)}  (tol ${r.tol.toExponential(0)}, worst case: ${r.case})`,
  );
  console.log(`# CUDA vs CPU, max relative error per op on ${device}\n${lines.join('\n')}`);
  const dir = process.env.VLLM_TS_GPU_REPORT;
  if (dir) writeFileSync(join(dir, 'ops.json'), JSON.stringify({ device, date: new Date().toISOString(), rows }, null, 2));
}
