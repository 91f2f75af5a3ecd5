// Times the CUDA kernels on Llama-3-8B's shapes in bf16 (not a test: run it with
// `node --import tsx tests/gpu/kernel_timing.ts`). Prints time per call and the
// achieved bandwidth or FLOP rate, so that the slow kernels stand out.
import { performance } from 'node:perf_hooks';
import { DType, Tensor, check, gpuSkipReason, openLibs } from './helpers.js';

const skip = gpuSkipReason();
if (skip) {
  console.log(`kernel timing skipped: ${skip}`);
  process.exit(0);
}
const { cuda } = openLibs();
const bf = DType.BF16;
const made: Tensor[] = [];
function rand(n: number, dt = bf, scale = 0.05): Tensor {
  const t = Tensor.empty(cuda, [n], dt);
  check(cuda, cuda.fillRandom(t.addr, dt, n, made.length + 1, scale), 'fill');
  made.push(t);
  return t;
}
function i32(v: Int32Array): Tensor {
  const t = Tensor.fromI32(cuda, v, [v.length]);
  made.push(t);
  return t;
}
function time(fn: () => number, iters = 20): number {
  for (let i = 0; i < 3; i++) check(cuda, fn(), 'warm-up');
  check(cuda, cuda.synchronize(), 'sync');
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) fn();
  check(cuda, cuda.synchronize(), 'sync');
  return (performance.now() - t0) / iters;
}
const rows: string[] = [];
function row(name: string, ms: number, bytes: number, flops = 0): void {
  const rate = flops ? `${(flops / ms / 1e9).toFixed(1)} TFLOP/s` : `${(bytes / ms / 1e6).toFixed(0)} GB/s`;
  rows.push(`${name.padEnd(44)} ${(ms * 1000).toFixed(1).padStart(9)} us  ${rate}`);
}

const [hidden, ffn, H, KVH, D] = [4096, 14336, 32, 8, 128];
const qkvN = (H + 2 * KVH) * D;
for (const [name, N, K] of [
  ['qkv', qkvN, hidden],
  ['gate_up', 2 * ffn, hidden],
  ['down', hidden, ffn],
] as [string, number, number][]) {
  const w = rand(N * K);
  for (const M of [1, 64, 2048]) {
    const x = rand(M * K);
    const y = rand(M * N);
    const ms = time(() => cuda.linear(y.addr, x.addr, w.addr, 0, M, N, K, bf, bf));
    row(`linear ${name} M=${M} N=${N} K=${K}`, ms, 2 * (N * K + M * K + M * N), M >= 64 ? 2 * M * N * K : 0);
  }
}

// Paged KV cache, block 16, sequences laid out contiguously.
function attention(numSeqs: number, ctx: number, qLen: number): void {
  const seqLen = ctx + qLen;
  const per = Math.ceil(seqLen / 16);
  const blocks = numSeqs * per;
  const kc = rand(blocks * 16 * KVH * D, bf, 1);
  const vc = rand(blocks * 16 * KVH * D, bf, 1);
  const q = rand(numSeqs * qLen * qkvN, bf, 1);
  const out = rand(numSeqs * qLen * H * D);
  const qsl = i32(Int32Array.from({ length: numSeqs + 1 }, (_, i) => i * qLen));
  const lens = i32(new Int32Array(numSeqs).fill(seqLen));
  const bt = i32(Int32Array.from({ length: numSeqs * per }, (_, i) => i));
  const ms = time(() =>
    cuda.attention(out.addr, q.addr, kc.addr, vc.addr, qsl.addr, lens.addr, bt.addr, numSeqs, numSeqs * qLen, qLen, seqLen, H, KVH, D, 16, per, qkvN, 1 / Math.sqrt(D), 0, 0, bf),
  );
  const kvBytes = numSeqs * seqLen * KVH * D * 2 * 2;
  const flops = qLen > 1 ? numSeqs * 4 * H * D * (qLen * ctx + (qLen * (qLen + 1)) / 2) : 0;
  row(`attention ${numSeqs}x(ctx ${ctx} + q ${qLen})`, ms, kvBytes, flops);
}
attention(1, 4095, 1);
attention(1, 32767, 1);
attention(64, 1023, 1);
attention(256, 1023, 1);
attention(1, 0, 2048);
attention(4, 1024, 512);

const T = 2048;
{
  const x = rand(T * hidden);
  const r = rand(T * hidden);
  const w = rand(hidden);
  row(`rms_norm+residual ${T}x${hidden}`, time(() => cuda.rmsNorm(x.addr, x.addr, r.addr, w.addr, T, hidden, 1e-5, 0, bf, bf)), 2 * 4 * T * hidden);
  const g = rand(T * 2 * ffn);
  const o = rand(T * ffn);
  row(`silu_and_mul ${T}x${ffn}`, time(() => cuda.siluAndMul(o.addr, g.addr, T, ffn, bf)), 2 * 3 * T * ffn);
  const qkv = rand(T * qkvN);
  const cs = rand(8192 * D, DType.F32, 1);
  const pos = i32(Int32Array.from({ length: T }, (_, i) => i));
  row(`rope ${T} tokens`, time(() => cuda.rope(qkv.addr, qkv.addr + H * D * 2, pos.addr, cs.addr, T, H, KVH, D, D, qkvN, qkvN, 1, bf)), 2 * 2 * T * (H + KVH) * D);
  const kc = rand(T * KVH * D);
  const vc = rand(T * KVH * D);
  const slots = i32(Int32Array.from({ length: T }, (_, i) => i));
  row(
    `reshape_and_cache ${T} tokens`,
    time(() => cuda.reshapeAndCache(qkv.addr + H * D * 2, qkv.addr + (H + KVH) * D * 2, kc.addr, vc.addr, slots.addr, T, KVH, D, qkvN, qkvN, bf)),
    2 * 2 * 2 * T * KVH * D,
  );
}
console.log(`# kernel timing on ${cuda.deviceName()} (bf16, Llama-3-8B shapes)\n${rows.join('\n')}`);
for (const t of made) t.dispose();
