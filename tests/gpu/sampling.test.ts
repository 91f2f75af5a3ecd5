// vt_sample and vt_logprobs on CUDA against the CPU twin on the same rows (logits
// rounded to bf16 / f16 once, for both), CUDA graph capture and replay, and the
// time of vt_sample at n = 256, vocab = 128256. Sampling must agree token for
// token: both libraries compute the same fixed-point masses (csrc/sampling_math.h).
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { DTYPES, DType, type NativeOps, Tensor, bitsOf, check, gpuSkipReason, openLibs, rng, roundTo } from './helpers.js';

const skip = gpuSkipReason();

interface Params {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  u: number;
}

/** Logits of a row: LLM-like (a broad body, a few strong tokens), flat, or integers (ties everywhere). */
type Shape = 'peaked' | 'flat' | 'ties';
function makeRows(seed: number, n: number, vocab: number, shape: Shape): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n * vocab);
  for (let row = 0; row < n; row++) {
    const x = out.subarray(row * vocab, (row + 1) * vocab);
    for (let i = 0; i < vocab; i++) {
      const g = r() + r() + r() - 1.5; // roughly normal, sd 0.5
      x[i] = shape === 'flat' ? g : shape === 'ties' ? Math.round(6 * g) : 6 * g;
    }
    if (shape === 'peaked') for (let j = 0; j < 12; j++) x[Math.floor(r() * vocab)] = 8 + 8 * r();
  }
  return out;
}

function paramsFor(i: number, vocab: number, u: number): Params {
  const base: Params = { temperature: 1, topK: 0, topP: 1, minP: 0, u };
  const all: Partial<Params>[] = [
    { temperature: 0 },
    {},
    { temperature: 0.6 },
    { topK: 1 },
    { topK: 50 },
    { topK: Math.max(1, vocab - 1) },
    { topP: 0.9 },
    { topP: 0.5, temperature: 0.8 },
    { minP: 0.1 },
    { temperature: 0.9, topK: 100, topP: 0.95, minP: 0.02 },
    { topP: 0.999, temperature: 1.3 },
    { topP: 0.95, u: 0 },
    { topP: 0.95, u: 1 - 2 ** -24 },
    { topK: 20, minP: 0.3, temperature: 2 },
  ];
  return { ...base, ...all[i % all.length] };
}

/** Per-row parameter tensors on one library. */
function paramTensors(o: NativeOps, ps: Params[]) {
  const f = (get: (p: Params) => number) => Tensor.fromF32(o, Float32Array.from(ps, get), [ps.length]);
  return {
    temp: f((p) => p.temperature),
    topK: Tensor.fromI32(o, Int32Array.from(ps, (p) => p.topK), [ps.length]),
    topP: f((p) => p.topP),
    minP: f((p) => p.minP),
    u: f((p) => p.u),
    dispose() {
      for (const t of [this.temp, this.topK, this.topP, this.minP, this.u]) t.dispose();
    },
  };
}

function runSample(o: NativeOps, logits: Tensor, ps: Params[], vocab: number, act: DType, out: Tensor): void {
  const p = paramTensors(o, ps);
  check(o, o.sample(out.addr, logits.addr, p.temp.addr, p.topK.addr, p.topP.addr, p.minP.addr, p.u.addr, ps.length, vocab, act), 'sample');
  p.dispose();
}

test('vt_sample: CUDA picks the CPU twin\'s token on every row', { skip }, () => {
  const l = openLibs();
  const mismatches: string[] = [];
  let rowsChecked = 0;
  let seed = 1;
  for (const act of DTYPES) {
    for (const [vocab, n] of [
      [128256, 42],
      [32001, 28],
      [7, 28],
    ]) {
      for (const shape of ['peaked', 'flat', 'ties'] as Shape[]) {
        const r = rng(seed * 7919);
        const values = roundTo(makeRows(seed++, n, vocab, shape), act);
        const ps = Array.from({ length: n }, (_, i) => paramsFor(i, vocab, r()));
        const xc = Tensor.fromF32(l.cpu, values, [n, vocab]);
        const xg = Tensor.fromHost(l.cuda, bitsOf(values, act), [n, vocab], act);
        const oc = Tensor.empty(l.cpu, [n], DType.I32);
        const og = Tensor.empty(l.cuda, [n], DType.I32);
        runSample(l.cpu, xc, ps, vocab, DType.F32, oc);
        runSample(l.cuda, xg, ps, vocab, act, og);
        const want = oc.toI32();
        const got = og.toI32();
        for (let i = 0; i < n; i++) {
          if (got[i] !== want[i]) mismatches.push(`${DType[act]} vocab=${vocab} ${shape} row ${i} ${JSON.stringify(ps[i])}: cuda ${got[i]} cpu ${want[i]}`);
        }
        rowsChecked += n;
        for (const t of [xc, xg, oc, og]) t.dispose();
      }
    }
  }
  console.log(`# vt_sample parity: ${rowsChecked - mismatches.length}/${rowsChecked} rows identical`);
  assert.deepEqual(mismatches.slice(0, 10), []);
});

test('vt_logprobs: CUDA matches the CPU twin (ids and ranks exactly)', { skip }, () => {
  const l = openLibs();
  const bad: string[] = [];
  let worst = 0;
  let seed = 100;
  const cases: [number, number, number[]][] = [
    [128256, 6, [0, 5, 20, 1500]],
    [32001, 5, [20, 1024, 1025]],
    [5000, 3, [5000]],
  ];
  for (const act of DTYPES) {
    for (const [vocab, n, ks] of cases) {
      for (const shape of ['peaked', 'ties'] as Shape[]) {
        const values = roundTo(makeRows(seed++, n, vocab, shape), act);
        const r = rng(seed);
        const chosen = Int32Array.from({ length: n }, () => Math.floor(r() * vocab));
        const xc = Tensor.fromF32(l.cpu, values, [n, vocab]);
        const xg = Tensor.fromHost(l.cuda, bitsOf(values, act), [n, vocab], act);
        const cc = Tensor.fromI32(l.cpu, chosen, [n]);
        const cg = Tensor.fromI32(l.cuda, chosen, [n]);
        for (const k of ks) {
          const outs = [l.cpu, l.cuda].map((o) => ({
            lp: Tensor.empty(o, [n, k + 1], DType.F32),
            ids: Tensor.empty(o, [n, k + 1], DType.I32),
            ranks: Tensor.empty(o, [n], DType.I32),
          }));
          check(l.cpu, l.cpu.logprobs(outs[0].lp.addr, outs[0].ids.addr, outs[0].ranks.addr, xc.addr, cc.addr, n, vocab, k, DType.F32), 'logprobs cpu');
          check(l.cuda, l.cuda.logprobs(outs[1].lp.addr, outs[1].ids.addr, outs[1].ranks.addr, xg.addr, cg.addr, n, vocab, k, act), 'logprobs cuda');
          const name = `${DType[act]} vocab=${vocab} ${shape} k=${k}`;
          if (!Buffer.from(outs[1].ids.toBytes()).equals(Buffer.from(outs[0].ids.toBytes()))) bad.push(`${name}: ids differ`);
          if (!Buffer.from(outs[1].ranks.toBytes()).equals(Buffer.from(outs[0].ranks.toBytes()))) bad.push(`${name}: ranks differ`);
          const a = outs[1].lp.toF32();
          const b = outs[0].lp.toF32();
          for (let i = 0; i < a.length; i++) {
            const e = Math.abs(a[i] - b[i]);
            if (!(e <= 5e-5 + 2e-6 * Math.abs(b[i]))) {
              bad.push(`${name}: logprob ${i} cuda ${a[i]} cpu ${b[i]}`);
              break;
            }
            worst = Math.max(worst, e);
          }
          for (const o of outs) for (const t of [o.lp, o.ids, o.ranks]) t.dispose();
        }
        for (const t of [xc, xg, cc, cg]) t.dispose();
      }
    }
  }
  console.log(`# vt_logprobs parity: max |cuda - cpu| logprob ${worst.toExponential(2)}`);
  assert.deepEqual(bad.slice(0, 10), []);
});

test('vt_sample / vt_logprobs time at n = 256, vocab = 128256 (bf16)', { skip }, () => {
  const { cuda } = openLibs();
  const n = 256;
  const vocab = 128256;
  const x = Tensor.fromHost(cuda, bitsOf(makeRows(7, n, vocab, 'peaked'), DType.BF16), [n, vocab], DType.BF16);
  const out = Tensor.empty(cuda, [n], DType.I32);
  const r = rng(3);
  const time = (ps: Params[]): number => {
    const p = paramTensors(cuda, ps);
    const call = () => cuda.sample(out.addr, x.addr, p.temp.addr, p.topK.addr, p.topP.addr, p.minP.addr, p.u.addr, n, vocab, DType.BF16);
    for (let i = 0; i < 3; i++) check(cuda, call(), 'warm-up');
    check(cuda, cuda.synchronize(), 'sync');
    const t0 = performance.now();
    const iters = 20;
    for (let i = 0; i < iters; i++) call();
    check(cuda, cuda.synchronize(), 'sync');
    p.dispose();
    return ((performance.now() - t0) / iters) * 1000;
  };
  const rows = (q: Partial<Params>) => Array.from({ length: n }, () => ({ temperature: 1, topK: 0, topP: 1, minP: 0, u: r(), ...q }));
  const lines = [
    ['greedy', time(rows({ temperature: 0 }))],
    ['temperature 1', time(rows({}))],
    ['top-p 0.9', time(rows({ topP: 0.9 }))],
    ['top-k 50 + top-p 0.9', time(rows({ topK: 50, topP: 0.9 }))],
    ['top-p 0.9 flat rows', (() => {
      const flat = Tensor.fromHost(cuda, bitsOf(makeRows(8, n, vocab, 'flat'), DType.BF16), [n, vocab], DType.BF16);
      check(cuda, cuda.copyD2D(x.addr, flat.addr, flat.nbytes), 'copy');
      flat.dispose();
      return time(rows({ topP: 0.9 }));
    })()],
  ] as [string, number][];
  const lp = Tensor.empty(cuda, [n, 21], DType.F32);
  const ids = Tensor.empty(cuda, [n, 21], DType.I32);
  const ranks = Tensor.empty(cuda, [n], DType.I32);
  const t0 = performance.now();
  for (let i = 0; i < 10; i++) check(cuda, cuda.logprobs(lp.addr, ids.addr, ranks.addr, x.addr, out.addr, n, vocab, 20, DType.BF16), 'logprobs');
  check(cuda, cuda.synchronize(), 'sync');
  lines.push(['logprobs k=20', ((performance.now() - t0) / 10) * 1000]);
  console.log(`# on ${cuda.deviceName()}, per call:\n${lines.map(([k, us]) => `#   ${k.padEnd(24)} ${us.toFixed(1).padStart(8)} us`).join('\n')}`);
  for (const t of [x, out, lp, ids, ranks]) t.dispose();
});

test('CUDA graph: linear + add + sample captured once, replayed on new inputs, equals eager', { skip }, () => {
  const { cuda } = openLibs();
  const bf = DType.BF16;
  const [n, K, vocab] = [32, 256, 4096];
  const r = rng(42);
  const rand = (len: number, scale: number) => roundTo(Float32Array.from({ length: len }, () => (2 * r() - 1) * scale), bf);
  // Everything is allocated before the capture: a graph must not allocate.
  const h = Tensor.fromHost(cuda, bitsOf(rand(n * K, 1), bf), [n, K], bf);
  const w = Tensor.fromHost(cuda, bitsOf(rand(vocab * K, 0.2), bf), [vocab, K], bf);
  const bias = Tensor.fromHost(cuda, bitsOf(rand(n * vocab, 1), bf), [n, vocab], bf);
  const proj = Tensor.empty(cuda, [n, vocab], bf);
  const logits = Tensor.empty(cuda, [n, vocab], bf);
  const ids = Tensor.empty(cuda, [n], DType.I32);
  const ps = Array.from({ length: n }, (_, i) => paramsFor(i, vocab, r()));
  const p = paramTensors(cuda, ps);
  const step = () => {
    check(cuda, cuda.linear(proj.addr, h.addr, w.addr, 0, n, vocab, K, bf, bf), 'linear');
    check(cuda, cuda.add(logits.addr, proj.addr, bias.addr, n * vocab, bf), 'add');
    check(cuda, cuda.sample(ids.addr, logits.addr, p.temp.addr, p.topK.addr, p.topP.addr, p.minP.addr, p.u.addr, n, vocab, bf), 'sample');
  };
  step(); // warm-up: cuBLASLt's heuristic and kernels are set up outside the capture
  check(cuda, cuda.synchronize(), 'sync');

  assert.equal(Number(cuda.graphEnd()), 0, 'end without a capture fails');
  assert.match(cuda.lastError(), /no capture/);
  check(cuda, cuda.graphBegin(), 'graph begin');
  assert.notEqual(cuda.graphBegin(), 0, 'a second begin fails');
  step();
  const graph = Number(cuda.graphEnd());
  assert.notEqual(graph, 0, cuda.lastError());

  for (let iter = 0; iter < 3; iter++) {
    h.copyFromHost(bitsOf(rand(n * K, 1), bf));
    p.u.copyFromHost(Float32Array.from({ length: n }, () => r()));
    check(cuda, cuda.graphLaunch(graph), 'graph launch');
    const gotIds = ids.toI32();
    const gotLogits = logits.toBytes();
    check(cuda, cuda.memset(ids.addr, 0xff, ids.nbytes), 'memset');
    check(cuda, cuda.memset(logits.addr, 0, logits.nbytes), 'memset');
    step();
    assert.ok(Buffer.from(logits.toBytes()).equals(Buffer.from(gotLogits)), `iteration ${iter}: replayed logits differ from eager`);
    assert.deepEqual(gotIds, ids.toI32(), `iteration ${iter}: replayed ids differ from eager`);
    assert.ok(new Set(gotIds).size > n / 4, 'the sampled rows are not all alike');
  }
  check(cuda, cuda.graphDestroy(graph), 'graph destroy');
  assert.notEqual(cuda.graphLaunch(graph), 0, 'a destroyed graph does not launch');
  assert.notEqual(cuda.graphDestroy(graph), 0, 'nor is destroyed twice');
  assert.equal(cuda.graphDestroy(0), 0);

  // A copy to the host inside a capture fails it, and the stream works afterwards.
  check(cuda, cuda.graphBegin(), 'graph begin');
  assert.notEqual(cuda.copyD2H(new Int32Array(n), ids.addr, n * 4), 0);
  assert.equal(Number(cuda.graphEnd()), 0);
  assert.match(cuda.lastError(), /capture failed/);
  step();
  assert.equal(ids.toI32().length, n);
  for (const t of [h, w, bias, proj, logits, ids]) t.dispose();
  p.dispose();
});
