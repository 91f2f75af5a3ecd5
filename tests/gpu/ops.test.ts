// Every CUDA op against its CPU twin on random inputs of awkward sizes. The CPU
// library computes in f32 on the same values the GPU gets in bf16 / f16 / f32;
// the error is max |gpu - cpu| / max |cpu| per output. Prints a table of the
// worst error per op and dtype, and writes all rows to $VLLM_TS_GPU_REPORT/ops.json.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { DTYPES, DType, Pair, Tensor, check, gpuSkipReason, openLibs, randomValues, record, relErr, report, rng, ropeCosSin, roundTo } from './helpers.js';
import { runAttentionCases } from './attention_cases.js';
import { runRopeCacheCases } from './rope_cache_cases.js';

const skip = gpuSkipReason();

after(() => {
  if (!skip) report(openLibs().cuda.deviceName());
});

test('fill_random and convert match the CPU library bit for bit', { skip }, () => {
  const l = openLibs();
  const mine: string[] = [];
  const n = 4099;
  const seed = 0x1234_5678_9abc;
  const cpu = Tensor.empty(l.cpu, [n], DType.F32);
  check(l.cpu, l.cpu.fillRandom(cpu.addr, DType.F32, n, seed, 0.05), 'fill cpu');
  const ref = cpu.toF32();
  for (const dt of DTYPES) {
    const gpu = Tensor.empty(l.cuda, [n], dt);
    check(l.cuda, l.cuda.fillRandom(gpu.addr, dt, n, seed, 0.05), 'fill cuda');
    const got = gpu.toF32();
    const want = roundTo(ref, dt);
    let mismatches = 0;
    for (let i = 0; i < n; i++) if (!Object.is(got[i], want[i])) mismatches++;
    if (!record('fill_random', `n=${n} (values differing)`, dt, mismatches, 0)) mine.push(`fill_random ${DType[dt]}: ${mismatches} of ${n} values differ`);
    // Round trip through vt_convert: f32 -> dt on the GPU equals the host rounding.
    const src = Tensor.fromF32(l.cuda, ref, [n]);
    const conv = Tensor.empty(l.cuda, [n], dt);
    check(l.cuda, l.cuda.convert(conv.addr, dt, src.addr, DType.F32, n), 'convert');
    const back = conv.toF32();
    let diff = 0;
    for (let i = 0; i < n; i++) if (!Object.is(back[i], want[i])) diff++;
    if (!record('convert', `f32->${DType[dt]} (values differing)`, dt, diff, 0)) mine.push(`convert f32->${DType[dt]}: ${diff} values differ`);
    for (const t of [gpu, src, conv]) t.dispose();
  }
  cpu.dispose();
  assert.deepEqual(mine, []);
});

test('embedding, gather_rows and add', { skip }, () => {
  const l = openLibs();
  const next = rng(1);
  const mine: string[] = [];
  for (const act of DTYPES) {
    for (const wdt of [act, DType.F32]) {
      for (const hidden of [100, 136]) {
        const vocab = 37;
        const numTokens = 11;
        const w = Pair.of(l, randomValues(next, vocab * hidden, wdt), wdt);
        const ids = Pair.i32(l, Int32Array.from({ length: numTokens }, () => Math.floor(next() * vocab)));
        const out = Pair.out(l, numTokens * hidden, act);
        check(l.cpu, l.cpu.embedding(out.cpu.addr, w.cpu.addr, ids.cpu.addr, numTokens, hidden, 1.5, DType.F32, DType.F32), 'embedding cpu');
        check(l.cuda, l.cuda.embedding(out.gpu.addr, w.gpu.addr, ids.gpu.addr, numTokens, hidden, 1.5, wdt, act), 'embedding cuda');
        const name = `hidden=${hidden} w=${DType[wdt]}`;
        if (!record('embedding', name, act, relErr(out.gpu.toF32(), out.cpu.toF32()))) mine.push(`embedding ${DType[act]} ${name}`);
        for (const t of [w, ids, out]) t.dispose();
      }
    }
    for (const width of [72, 45]) {
      const x = Pair.of(l, randomValues(next, 13 * width, act), act);
      const rowsIdx = Pair.i32(l, Int32Array.from([12, 0, 5, 5, 7]));
      const out = Pair.out(l, 5 * width, act);
      check(l.cpu, l.cpu.gatherRows(out.cpu.addr, x.cpu.addr, rowsIdx.cpu.addr, 5, width, DType.F32), 'gather cpu');
      check(l.cuda, l.cuda.gatherRows(out.gpu.addr, x.gpu.addr, rowsIdx.gpu.addr, 5, width, act), 'gather cuda');
      if (!record('gather_rows', `width=${width}`, act, relErr(out.gpu.toF32(), out.cpu.toF32()))) mine.push(`gather_rows ${DType[act]} ${width}`);
      for (const t of [x, rowsIdx, out]) t.dispose();
    }
    for (const n of [1003, 4096]) {
      const a = Pair.of(l, randomValues(next, n, act), act);
      const b = Pair.of(l, randomValues(next, n, act), act);
      const out = Pair.out(l, n, act);
      check(l.cpu, l.cpu.add(out.cpu.addr, a.cpu.addr, b.cpu.addr, n, DType.F32), 'add cpu');
      check(l.cuda, l.cuda.add(out.gpu.addr, a.gpu.addr, b.gpu.addr, n, act), 'add cuda');
      if (!record('add', `n=${n}`, act, relErr(out.gpu.toF32(), out.cpu.toF32()))) mine.push(`add ${DType[act]} ${n}`);
      for (const t of [a, b, out]) t.dispose();
    }
  }
  assert.deepEqual(mine, []);
});

test('rms_norm (fused residual, Gemma offset, in place) and layer_norm', { skip }, () => {
  const l = openLibs();
  const next = rng(2);
  const mine: string[] = [];
  for (const act of DTYPES) {
    for (const [hidden, withRes, offset, inPlace] of [
      [200, false, 0, false],
      [200, true, 0, true],
      [99, true, 1, false],
      [4096, true, 0, false],
    ] as [number, boolean, number, boolean][]) {
      const T = 7;
      const x = Pair.of(l, randomValues(next, T * hidden, act, 2), act);
      const res = withRes ? Pair.of(l, randomValues(next, T * hidden, act, 2), act) : undefined;
      const w = Pair.of(l, randomValues(next, hidden, act), act);
      const out = inPlace ? x : Pair.out(l, T * hidden, act);
      check(l.cpu, l.cpu.rmsNorm(out.cpu.addr, x.cpu.addr, res?.cpu.addr ?? 0, w.cpu.addr, T, hidden, 1e-5, offset, DType.F32, DType.F32), 'rms cpu');
      check(l.cuda, l.cuda.rmsNorm(out.gpu.addr, x.gpu.addr, res?.gpu.addr ?? 0, w.gpu.addr, T, hidden, 1e-5, offset, act, act), 'rms cuda');
      const name = `hidden=${hidden}${withRes ? ' +residual' : ''}${offset ? ' offset=1' : ''}${inPlace ? ' in-place' : ''}`;
      if (!record('rms_norm', name, act, relErr(out.gpu.toF32(), out.cpu.toF32()))) mine.push(`rms_norm ${DType[act]} ${name}`);
      if (res && !record('rms_norm residual', name, act, relErr(res.gpu.toF32(), res.cpu.toF32()))) mine.push(`rms_norm residual ${DType[act]} ${name}`);
      for (const t of new Set([x, res, w, out])) t?.dispose();
    }
    for (const [hidden, withRes] of [
      [136, false],
      [77, true],
    ] as [number, boolean][]) {
      const T = 5;
      const x = Pair.of(l, randomValues(next, T * hidden, act, 2), act);
      const res = withRes ? Pair.of(l, randomValues(next, T * hidden, act, 2), act) : undefined;
      const w = Pair.of(l, randomValues(next, hidden, act), act);
      const b = Pair.of(l, randomValues(next, hidden, act), act);
      const out = Pair.out(l, T * hidden, act);
      check(l.cpu, l.cpu.layerNorm(out.cpu.addr, x.cpu.addr, res?.cpu.addr ?? 0, w.cpu.addr, b.cpu.addr, T, hidden, 1e-5, DType.F32, DType.F32), 'ln cpu');
      check(l.cuda, l.cuda.layerNorm(out.gpu.addr, x.gpu.addr, res?.gpu.addr ?? 0, w.gpu.addr, b.gpu.addr, T, hidden, 1e-5, act, act), 'ln cuda');
      const name = `hidden=${hidden}${withRes ? ' +residual' : ''}`;
      if (!record('layer_norm', name, act, relErr(out.gpu.toF32(), out.cpu.toF32()))) mine.push(`layer_norm ${DType[act]} ${name}`);
      for (const t of [x, res, w, b, out]) t?.dispose();
    }
  }
  assert.deepEqual(mine, []);
});

test('linear (cuBLASLt, small M, bias epilogue, weight conversion)', { skip }, () => {
  const l = openLibs();
  const next = rng(3);
  const mine: string[] = [];
  for (const act of DTYPES) {
    for (const wdt of [act, act === DType.F32 ? DType.BF16 : DType.F32]) {
      for (const [M, N, K, withBias] of [
        [1, 77, 100, true],
        [37, 129, 136, false],
        [64, 256, 512, true],
        [5, 1000, 64, false],
        [300, 96, 33, true],
        // Small M (decode batches) with K % 8 == 0 and w = act: odd N, vector tails, long rows.
        [8, 300, 1024, true],
        [2, 130, 520, false],
        [1, 1001, 4104, false],
        [2, 7, 8, true],
        [7, 1001, 4104, false],
        [1, 2050, 2048, true],
        // The skinny kernel's largest M, two n-tiles with a partial second one, K not a multiple of 32.
        [16, 333, 2056, true],
        [13, 64, 4096, false],
        [17, 200, 520, true],
      ] as [number, number, number, boolean][]) {
        const x = Pair.of(l, randomValues(next, M * K, act), act);
        const w = Pair.of(l, randomValues(next, N * K, wdt, 0.1), wdt);
        const b = withBias ? Pair.of(l, randomValues(next, N, wdt), wdt) : undefined;
        const out = Pair.out(l, M * N, act);
        check(l.cpu, l.cpu.linear(out.cpu.addr, x.cpu.addr, w.cpu.addr, b?.cpu.addr ?? 0, M, N, K, DType.F32, DType.F32), 'linear cpu');
        check(l.cuda, l.cuda.linear(out.gpu.addr, x.gpu.addr, w.gpu.addr, b?.gpu.addr ?? 0, M, N, K, wdt, act), 'linear cuda');
        const name = `${M}x${N}x${K}${withBias ? ' +bias' : ''} w=${DType[wdt]}`;
        if (!record('linear', name, act, relErr(out.gpu.toF32(), out.cpu.toF32()))) mine.push(`linear ${DType[act]} ${name}`);
        for (const t of [x, w, b, out]) t?.dispose();
      }
    }
  }
  assert.deepEqual(mine, []);
});

// The decode batch sizes (M <= 16) share one kernel whose reduction order does not
// depend on M: a request's logits, and so its greedy and seeded tokens, do not depend
// on how many other requests share its step.
test('linear batch invariance: a row\'s output bits are the same at every decode M (1..16)', { skip }, () => {
  const l = openLibs();
  const next = rng(33);
  const bad: string[] = [];
  for (const act of [DType.BF16, DType.F16]) {
    for (const [N, K, withBias] of [[4104, 4096, false], [1001, 2056, true], [40, 32, false]] as [number, number, boolean][]) {
      const w = Pair.of(l, randomValues(next, N * K, act, 0.05), act);
      const b = withBias ? Pair.of(l, randomValues(next, N, act), act) : undefined;
      const row = randomValues(next, K, act); // the request whose output is watched
      let ref: Float32Array | undefined;
      for (const M of [1, 2, 3, 5, 8, 9, 13, 16]) {
        const xs = randomValues(next, M * K, act);
        xs.set(row, (M - 1) * K); // the watched row last: every n-tile position and lane group
        const x = Pair.of(l, xs, act);
        const out = Pair.out(l, M * N, act);
        check(l.cuda, l.cuda.linear(out.gpu.addr, x.gpu.addr, w.gpu.addr, b?.gpu.addr ?? 0, M, N, K, act, act), 'linear cuda');
        const got = out.gpu.toF32().slice((M - 1) * N, M * N);
        ref ??= got;
        if (got.some(Number.isNaN)) bad.push(`${DType[act]} ${N}x${K} M=${M} (unwritten or NaN)`);
        else if (!got.every((v, i) => Object.is(v, ref![i]))) bad.push(`${DType[act]} ${N}x${K} M=${M}`);
        x.dispose();
        out.dispose();
      }
      w.dispose();
      b?.dispose();
    }
  }
  assert.deepEqual(bad, [], 'shapes and batch sizes where the watched row\'s output changed');
});

test('rope (neox and GPT-J, partial rotary, fused qkv strides)', { skip }, () => {
  const l = openLibs();
  const next = rng(4);
  const mine: string[] = [];
  const [T, H, KVH, D, maxPos] = [9, 4, 2, 64, 64];
  const stride = (H + 2 * KVH) * D;
  for (const act of DTYPES) {
    for (const [rot, neox] of [
      [64, 1],
      [32, 1],
      [64, 0],
    ]) {
      const cs = ropeCosSin(maxPos, rot);
      const cache = new Pair(Tensor.fromF32(l.cpu, cs, [cs.length]), Tensor.fromF32(l.cuda, cs, [cs.length]));
      const qkv = Pair.of(l, randomValues(next, T * stride, act), act);
      const pos = Pair.i32(l, Int32Array.from({ length: T }, () => Math.floor(next() * maxPos)));
      const kOff = (t: Tensor) => t.addr + H * D * (t.nbytes / t.numel);
      check(l.cpu, l.cpu.rope(qkv.cpu.addr, kOff(qkv.cpu), pos.cpu.addr, cache.cpu.addr, T, H, KVH, D, rot, stride, stride, neox, DType.F32), 'rope cpu');
      check(l.cuda, l.cuda.rope(qkv.gpu.addr, kOff(qkv.gpu), pos.gpu.addr, cache.gpu.addr, T, H, KVH, D, rot, stride, stride, neox, act), 'rope cuda');
      const name = `rot=${rot} ${neox ? 'neox' : 'gptj'}`;
      if (!record('rope', name, act, relErr(qkv.gpu.toF32(), qkv.cpu.toF32()))) mine.push(`rope ${DType[act]} ${name}`);
      for (const t of [cache, qkv, pos]) t.dispose();
    }
  }
  assert.deepEqual(mine, []);
});

test('qk_norm_rope (per-head q/k RMSNorm + rope on fused qkv rows) against the CPU and the rms_norm + rope launches', { skip }, () => {
  const l = openLibs();
  const next = rng(41);
  const mine: string[] = [];
  const [T, H, KVH, maxPos, eps] = [7, 8, 2, 64, 1e-6];
  for (const act of DTYPES) {
    for (const [D, rot, neox, offset] of [[128, 128, 1, 0], [64, 32, 0, 1]]) {
      const stride = (H + 2 * KVH) * D;
      const cs = ropeCosSin(maxPos, rot);
      const cache = new Pair(Tensor.fromF32(l.cpu, cs, [cs.length]), Tensor.fromF32(l.cuda, cs, [cs.length]));
      const qkvHost = randomValues(next, T * stride, act, 2);
      const qkv = Pair.of(l, qkvHost, act);
      const qw = Pair.of(l, randomValues(next, D, act), act), kw = Pair.of(l, randomValues(next, D, act), act);
      const pos = Pair.i32(l, Int32Array.from({ length: T }, () => Math.floor(next() * maxPos)));
      const kOff = (t: Tensor) => t.addr + H * D * (t.nbytes / t.numel);
      check(l.cpu, l.cpu.qkNormRope(qkv.cpu.addr, kOff(qkv.cpu), qw.cpu.addr, kw.cpu.addr, pos.cpu.addr, cache.cpu.addr, T, H, KVH, D, rot,
        stride, stride, eps, offset, neox, DType.F32, DType.F32), 'qk_norm_rope cpu');
      check(l.cuda, l.cuda.qkNormRope(qkv.gpu.addr, kOff(qkv.gpu), qw.gpu.addr, kw.gpu.addr, pos.gpu.addr, cache.gpu.addr, T, H, KVH, D, rot,
        stride, stride, eps, offset, neox, act, act), 'qk_norm_rope cuda');
      const name = `D=${D} rot=${rot} ${neox ? 'neox' : 'gptj'} offset=${offset}`;
      const got = qkv.gpu.toF32();
      if (!record('qk_norm_rope', name, act, relErr(got, qkv.cpu.toF32()))) mine.push(`qk_norm_rope ${DType[act]} ${name}`);
      // v untouched, bit for bit
      let vSame = true;
      for (let t = 0; t < T; t++) for (let i = (H + KVH) * D; i < stride; i++) vSame &&= got[t * stride + i] === qkvHost[t * stride + i];
      if (!record('qk_norm_rope v untouched', name, act, vSame ? 0 : 1, 0)) mine.push(`v ${DType[act]} ${name}`);
      // The launches it replaces, on contiguous q and k copies: vt_rms_norm per head, then vt_rope.
      const qPart = new Float32Array(T * H * D), kPart = new Float32Array(T * KVH * D);
      for (let t = 0; t < T; t++) {
        qPart.set(qkvHost.subarray(t * stride, t * stride + H * D), t * H * D);
        kPart.set(qkvHost.subarray(t * stride + H * D, t * stride + (H + KVH) * D), t * KVH * D);
      }
      const q2 = Pair.of(l, qPart, act), k2 = Pair.of(l, kPart, act);
      check(l.cuda, l.cuda.rmsNorm(q2.gpu.addr, q2.gpu.addr, 0, qw.gpu.addr, T * H, D, eps, offset, act, act), 'rms q');
      check(l.cuda, l.cuda.rmsNorm(k2.gpu.addr, k2.gpu.addr, 0, kw.gpu.addr, T * KVH, D, eps, offset, act, act), 'rms k');
      check(l.cuda, l.cuda.rope(q2.gpu.addr, k2.gpu.addr, pos.gpu.addr, cache.gpu.addr, T, H, KVH, D, rot, H * D, KVH * D, neox, act), 'rope');
      const fusedQ = new Float32Array(T * H * D);
      for (let t = 0; t < T; t++) fusedQ.set(got.subarray(t * stride, t * stride + H * D), t * H * D);
      if (!record('qk_norm_rope vs rms_norm+rope', name, act, relErr(fusedQ, q2.gpu.toF32()))) mine.push(`two-launch ${DType[act]} ${name}`);
      for (const t of [cache, qkv, qw, kw, pos, q2, k2]) t.dispose();
    }
  }
  assert.deepEqual(mine, []);
});

test('rope_and_cache, qk_norm_rope_and_cache (one launch) = the rope / qk_norm_rope + reshape_and_cache launches bit for bit, and the CPU twin', { skip }, () => {
  assert.deepEqual(runRopeCacheCases(openLibs()), []);
});

test('silu_and_mul, gelu_tanh_and_mul, gelu_tanh', { skip }, () => {
  const l = openLibs();
  const next = rng(5);
  const mine: string[] = [];
  for (const act of DTYPES) {
    for (const d of [200, 99]) {
      const T = 6;
      const x = Pair.of(l, randomValues(next, T * 2 * d, act, 4), act);
      for (const [op, cpuFn, gpuFn] of [
        ['silu_and_mul', l.cpu.siluAndMul, l.cuda.siluAndMul],
        ['gelu_tanh_and_mul', l.cpu.geluTanhAndMul, l.cuda.geluTanhAndMul],
      ] as const) {
        const out = Pair.out(l, T * d, act);
        check(l.cpu, cpuFn(out.cpu.addr, x.cpu.addr, T, d, DType.F32), `${op} cpu`);
        check(l.cuda, gpuFn(out.gpu.addr, x.gpu.addr, T, d, act), `${op} cuda`);
        if (!record(op, `d=${d}`, act, relErr(out.gpu.toF32(), out.cpu.toF32()))) mine.push(`${op} ${DType[act]} ${d}`);
        out.dispose();
      }
      const out = Pair.out(l, T * 2 * d, act);
      check(l.cpu, l.cpu.geluTanh(out.cpu.addr, x.cpu.addr, T * 2 * d, DType.F32), 'gelu cpu');
      check(l.cuda, l.cuda.geluTanh(out.gpu.addr, x.gpu.addr, T * 2 * d, act), 'gelu cuda');
      if (!record('gelu_tanh', `n=${T * 2 * d}`, act, relErr(out.gpu.toF32(), out.cpu.toF32()))) mine.push(`gelu_tanh ${DType[act]} ${d}`);
      for (const t of [x, out]) t.dispose();
    }
  }
  assert.deepEqual(mine, []);
});

test('scale_softcap (logit soft-capping, multipliers)', { skip }, () => {
  const l = openLibs();
  const next = rng(16);
  const mine: string[] = [];
  for (const act of DTYPES) {
    for (const [n, scale, cap] of [[4096 * 3, 1, 30], [999, 0.25, 0], [1000, 1 / 8, 50]]) {
      const x = Pair.of(l, randomValues(next, n, act, 60), act);
      const out = Pair.out(l, n, act);
      check(l.cpu, l.cpu.scaleSoftcap(out.cpu.addr, x.cpu.addr, n, scale, cap, DType.F32), 'scale_softcap cpu');
      check(l.cuda, l.cuda.scaleSoftcap(out.gpu.addr, x.gpu.addr, n, scale, cap, act), 'scale_softcap cuda');
      if (!record('scale_softcap', `n=${n} cap=${cap}`, act, relErr(out.gpu.toF32(), out.cpu.toF32()))) mine.push(`scale_softcap ${DType[act]} ${n}`);
      for (const t of [x, out]) t.dispose();
    }
  }
  assert.deepEqual(mine, []);
});

test('reshape_and_cache (strided keys, padding slots)', { skip }, () => {
  const l = openLibs();
  const next = rng(6);
  const mine: string[] = [];
  const [T, H, numBlocks, blockSize] = [10, 4, 7, 16];
  for (const act of DTYPES) {
    for (const [dim, kvh] of [
      [64, 2],
      [12, 3],
    ]) {
      const s = (H + 2 * kvh) * dim;
      const qkv = Pair.of(l, randomValues(next, T * s, act), act);
      const cacheN = numBlocks * blockSize * kvh * dim;
      const kc = Pair.of(l, randomValues(next, cacheN, act), act);
      const vc = Pair.of(l, randomValues(next, cacheN, act), act);
      const perm = [...Array(numBlocks * blockSize).keys()].sort(() => next() - 0.5);
      const slots = Int32Array.from({ length: T }, (_, i) => (i % 4 === 3 ? -1 : perm[i]));
      const sl = Pair.i32(l, slots);
      const el = act === DType.F32 ? 4 : 2;
      const kAddr = (t: Tensor) => t.addr + H * dim * (t.device === 'cpu' ? 4 : el);
      const vAddr = (t: Tensor) => t.addr + (H + kvh) * dim * (t.device === 'cpu' ? 4 : el);
      check(l.cpu, l.cpu.reshapeAndCache(kAddr(qkv.cpu), vAddr(qkv.cpu), kc.cpu.addr, vc.cpu.addr, sl.cpu.addr, T, kvh, dim, s, s, DType.F32), 'cache cpu');
      check(l.cuda, l.cuda.reshapeAndCache(kAddr(qkv.gpu), vAddr(qkv.gpu), kc.gpu.addr, vc.gpu.addr, sl.gpu.addr, T, kvh, dim, s, s, act), 'cache cuda');
      const name = `kvh=${kvh} d=${dim} stride=${s}`;
      const err = Math.max(relErr(kc.gpu.toF32(), kc.cpu.toF32()), relErr(vc.gpu.toF32(), vc.cpu.toF32()));
      // A copy: exact.
      if (!record('reshape_and_cache', name, act, err, 0)) mine.push(`reshape_and_cache ${DType[act]} ${name}`);
      for (const t of [qkv, kc, vc, sl]) t.dispose();
    }
  }
  assert.deepEqual(mine, []);
});

test('attention: decode, prefill, chunked prefill, GQA/MQA, split-K, sliding window, soft cap', { skip }, () => {
  const mine = runAttentionCases(openLibs());
  assert.deepEqual(mine, []);
});
