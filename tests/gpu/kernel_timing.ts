// Times the CUDA kernels on Llama-3-8B's shapes in bf16 (not a test: run it with
// `node --import tsx tests/gpu/kernel_timing.ts [linear|attention|other|rope ...]`).
// Prints the median time per call and the achieved bandwidth (bytes that must be
// moved) or FLOP rate, so that the slow kernels stand out. VLLM_TS_ATTENTION=simt
// times the SIMT attention kernels instead of the tensor-core ones.
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
const sections = process.argv.slice(2);
const want = (s: string): boolean => sections.length === 0 || sections.includes(s);
/** n calls captured in one CUDA graph (0 when the library cannot capture them). */
function capture(fn: () => number, n: number): number {
  if (cuda.graphBegin() !== 0) return 0;
  let ok = true;
  for (let i = 0; i < n; i++) if (fn() !== 0) ok = false;
  const graph = cuda.graphEnd();
  if (graph && !ok) {
    cuda.graphDestroy(graph);
    return 0;
  }
  return graph;
}
/**
 * Median over 5 rounds of the mean time per call (ms); each round lasts about 20 ms.
 * The calls of a round are replayed from a CUDA graph where the library has them,
 * so that the host's launch costs stay out of short kernels' times (as in a decode
 * step, which is a graph too).
 */
function time(fn: () => number): number {
  for (let i = 0; i < 3; i++) check(cuda, fn(), 'warm-up');
  check(cuda, cuda.synchronize(), 'sync');
  let t0 = performance.now();
  check(cuda, fn(), 'call');
  check(cuda, cuda.synchronize(), 'sync');
  const iters = Math.max(3, Math.min(200, Math.round(20 / Math.max(performance.now() - t0, 1e-3))));
  const graph = capture(fn, iters);
  const rounds: number[] = [];
  for (let r = 0; r < 5; r++) {
    t0 = performance.now();
    if (graph) check(cuda, cuda.graphLaunch(graph), 'graph launch');
    else for (let i = 0; i < iters; i++) fn();
    check(cuda, cuda.synchronize(), 'sync');
    rounds.push((performance.now() - t0) / iters);
  }
  if (graph) cuda.graphDestroy(graph);
  graphed ||= graph !== 0;
  return rounds.sort((a, b) => a - b)[2];
}
let graphed = false;
const rows: string[] = [];
function row(name: string, ms: number, bytes: number, flops = 0): void {
  const rates = [flops ? `${(flops / ms / 1e9).toFixed(1)} TFLOP/s` : '', bytes ? `${(bytes / ms / 1e6).toFixed(0)} GB/s` : ''];
  rows.push(`${name.padEnd(50)} ${(ms * 1000).toFixed(1).padStart(9)} us  ${rates.filter(Boolean).join('  ')}`);
}

const [hidden, ffn, H, KVH, D] = [4096, 14336, 32, 8, 128];
const qkvN = (H + 2 * KVH) * D;
for (const [name, N, K] of !want('linear') ? [] : [
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

// Paged KV cache, block 16, sequences laid out contiguously. seqs: [cached tokens,
// query tokens] per sequence; maxSeqLen as a CUDA graph passes it (max_model_len).
function attention(name: string, seqs: [number, number][], maxSeqLen = 0): void {
  const numSeqs = seqs.length;
  const lens = seqs.map(([c, q]) => c + q);
  const per = Math.ceil(Math.max(...lens) / 16);
  const numTokens = seqs.reduce((a, [, q]) => a + q, 0);
  const maxQ = Math.max(...seqs.map(([, q]) => q));
  const kc = rand(numSeqs * per * 16 * KVH * D, bf, 1);
  const vc = rand(numSeqs * per * 16 * KVH * D, bf, 1);
  const q = rand(numTokens * qkvN, bf, 1);
  const out = rand(numTokens * H * D);
  const qsl = new Int32Array(numSeqs + 1);
  seqs.forEach(([, ql], i) => (qsl[i + 1] = qsl[i] + ql));
  const loc = i32(qsl);
  const sl = i32(Int32Array.from(lens));
  const bt = i32(Int32Array.from({ length: numSeqs * per }, (_, i) => i));
  const msl = Math.max(maxSeqLen, ...lens);
  const ms = time(() =>
    cuda.attention(out.addr, q.addr, kc.addr, vc.addr, loc.addr, sl.addr, bt.addr, numSeqs, numTokens, maxQ, msl, H, KVH, D, 16, per, qkvN, 1 / Math.sqrt(D), 0, 0, bf),
  );
  const kvBytes = lens.reduce((a, n) => a + n, 0) * KVH * D * 2 * 2;
  const flops = seqs.reduce((a, [c, ql]) => a + (ql > 1 ? 4 * H * D * (ql * c + (ql * (ql + 1)) / 2) : 0), 0);
  row(`attention ${name}`, ms, flops > 0 && numSeqs === 1 ? 0 : kvBytes, flops);
  for (const t of [kc, vc, q, out, loc, sl, bt]) made.splice(made.indexOf(t), 1)[0].dispose();
}
if (want('attention')) {
  const rep = (n: number, s: [number, number]): [number, number][] => Array.from({ length: n }, () => s);
  attention('decode 1x(ctx 4095 + 1)', [[4095, 1]]);
  attention('decode 1x(ctx 32767 + 1)', [[32767, 1]]);
  attention('decode 1x(ctx 1023 + 1), max_seq_len 8192', [[1023, 1]], 8192);
  attention('decode 64x(ctx 1023 + 1)', rep(64, [1023, 1]));
  attention('decode 256x(ctx 1023 + 1)', rep(256, [1023, 1]));
  attention('decode 64x(ctx 4095 + 1)', rep(64, [4095, 1]));
  attention('prefill 1x(ctx 0 + q 2048)', [[0, 2048]]);
  attention('prefill 1x(ctx 0 + q 8192)', [[0, 8192]]);
  attention('prefill 4x(ctx 1024 + q 512)', rep(4, [1024, 512]));
  attention('prefill 16x(ctx 0 + q 128)', rep(16, [0, 128]));
  attention('mixed 255x(ctx 1023 + 1) + (ctx 512 + q 512)', [...rep(255, [1023, 1]), [512, 512]]);
}

const T = 2048;
if (want('other')) {
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
// The rope + cache write of one layer, two launches against the fused one: at batch 1
// (the decode step's case) and 2048 tokens; Llama-3-8B's heads, then Qwen3-30B-A3B's
// (32 / 4 KV heads) with the per-head q/k norms.
if (want('rope')) {
  const cs = rand(8192 * D, DType.F32, 1);
  const qn = rand(D), kn = rand(D);
  for (const [fam, kvh] of [['llama', KVH], ['qwen3 q/k norm', 4]] as const)
    for (const n of [1, T]) {
      const w = (H + 2 * kvh) * D;
      const qkv = rand(n * w), kc = rand(n * kvh * D), vc = rand(n * kvh * D);
      const pos = i32(Int32Array.from({ length: n }, (_, i) => i)), sl = i32(Int32Array.from({ length: n }, (_, i) => i));
      const [q, k, v] = [qkv.addr, qkv.addr + H * D * 2, qkv.addr + (H + kvh) * D * 2];
      const norm = kvh !== KVH;
      const first = () => (norm ? cuda.qkNormRope(q, k, qn.addr, kn.addr, pos.addr, cs.addr, n, H, kvh, D, D, w, w, 1e-6, 0, 1, bf, bf)
        : cuda.rope(q, k, pos.addr, cs.addr, n, H, kvh, D, D, w, w, 1, bf));
      const two = () => first() || cuda.reshapeAndCache(k, v, kc.addr, vc.addr, sl.addr, n, kvh, D, w, w, bf);
      const one = () => (norm ? cuda.qkNormRopeAndCache(q, k, v, qn.addr, kn.addr, pos.addr, cs.addr, kc.addr, vc.addr, sl.addr, n, H, kvh, D, D, w, w, w, 1e-6, 0, 1, bf, bf)
        : cuda.ropeAndCache(q, k, v, pos.addr, cs.addr, kc.addr, vc.addr, sl.addr, n, H, kvh, D, D, w, w, w, 1, bf));
      const bytes = 2 * (2 * n * (H + kvh) * D + 2 * n * kvh * D);
      row(`${fam} rope + reshape_and_cache ${n} tok (2 launches)`, time(two), bytes);
      row(`${fam} rope_and_cache ${n} tok (1 launch)`, time(one), bytes);
    }
}
console.log(`# kernel timing on ${cuda.deviceName()} (bf16, Llama-3-8B shapes${process.env.VLLM_TS_ATTENTION === 'simt' ? ', SIMT attention' : ''}${graphed ? ', replayed from CUDA graphs' : ', host-timed'})\n${rows.join('\n')}`);
for (const t of made) t.dispose();
