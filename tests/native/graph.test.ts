// CPU graphs (csrc/cpu/graph.cpp): ops recorded between vt_graph_begin and
// vt_graph_end run nothing then, and vt_graph_launch replays them on whatever the
// buffers hold at launch: the same bits as the same ops run eagerly.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';

import { DType, Tensor, cpu, f32, randn, rng } from './helpers.js';

const ops = cpu(2);
const F = DType.F32;

test('linear + rms_norm + add + sample captured once, replayed on new inputs, equals eager', () => {
  const [n, K, vocab] = [4, 256, 1024];
  const r = rng(7);
  const x = f32(ops, randn(r, n * K), [n, K]);
  const w = f32(ops, randn(r, vocab * K, 0.1), [vocab, K]);
  const nw = f32(ops, randn(r, K), [K]);
  const bias = f32(ops, randn(r, n * vocab), [n, vocab]);
  const normed = Tensor.empty(ops, [n, K], F);
  const logits = Tensor.empty(ops, [n, vocab], F);
  const ids = Tensor.empty(ops, [n], DType.I32);
  const param = (vals: number[]) => f32(ops, Float32Array.from(vals));
  const [temp, topK, topP, minP, u] = [param([0, 1, 0.8, 1]), Tensor.fromI32(ops, Int32Array.from([0, 50, 0, 0]), [n]), param([1, 1, 0.9, 1]), param([0, 0, 0, 0.1]), param([0.3, 0.6, 0.2, 0.9])];
  const step = () => {
    assert.equal(ops.rmsNorm(normed.addr, x.addr, 0, nw.addr, n, K, 1e-5, 0, F, F), 0, ops.lastError());
    assert.equal(ops.linear(logits.addr, normed.addr, w.addr, 0, n, vocab, K, F, F), 0, ops.lastError());
    assert.equal(ops.add(logits.addr, logits.addr, bias.addr, n * vocab, F), 0, ops.lastError());
    assert.equal(ops.sample(ids.addr, logits.addr, temp.addr, topK.addr, topP.addr, minP.addr, u.addr, n, vocab, F), 0, ops.lastError());
  };

  assert.equal(Number(ops.graphEnd()), 0, 'end without a capture fails');
  assert.match(ops.lastError(), /no capture/);
  assert.equal(ops.memset(ids.addr, 0xff, ids.nbytes), 0);
  assert.equal(ops.graphBegin(), 0, ops.lastError());
  assert.notEqual(ops.graphBegin(), 0, 'a second begin fails');
  step();
  const graph = Number(ops.graphEnd());
  assert.notEqual(graph, 0, ops.lastError());
  assert.deepEqual([...ids.toI32()], [-1, -1, -1, -1], 'a capture runs nothing');

  for (let iter = 0; iter < 3; iter++) {
    x.copyFromHost(randn(r, n * K));
    u.copyFromHost(Float32Array.from({ length: n }, () => r()));
    assert.equal(ops.graphLaunch(graph), 0, ops.lastError());
    const gotIds = ids.toI32();
    const gotLogits = logits.toBytes();
    assert.equal(ops.memset(ids.addr, 0xff, ids.nbytes), 0);
    assert.equal(ops.memset(logits.addr, 0, logits.nbytes), 0);
    step();
    assert.ok(Buffer.from(logits.toBytes()).equals(Buffer.from(gotLogits)), `iteration ${iter}: replayed logits differ from eager`);
    assert.deepEqual(gotIds, ids.toI32(), `iteration ${iter}: replayed ids differ from eager`);
  }
  assert.equal(ops.graphDestroy(graph), 0, ops.lastError());
  assert.notEqual(ops.graphLaunch(graph), 0, 'a destroyed graph does not launch');
  assert.notEqual(ops.graphDestroy(graph), 0, 'nor is destroyed twice');
  assert.equal(ops.graphDestroy(0), 0);

  // A copy to the host inside a capture fails it; ops run eagerly afterwards.
  assert.equal(ops.graphBegin(), 0);
  assert.notEqual(ops.copyD2H(new Int32Array(n), ids.addr, n * 4), 0);
  assert.equal(Number(ops.graphEnd()), 0);
  assert.match(ops.lastError(), /capture failed/);
  assert.equal(ops.memset(ids.addr, 0xff, ids.nbytes), 0);
  step();
  assert.ok(ids.toI32().every((id) => id >= 0 && id < vocab));
  for (const t of [x, w, nw, bias, normed, logits, ids, temp, topK, topP, minP, u]) t.dispose();
});

test('a replayed op with bad arguments fails the launch with its own message', () => {
  const x = f32(ops, new Float32Array(8));
  assert.equal(ops.graphBegin(), 0);
  assert.equal(ops.linear(x.addr, x.addr, x.addr, 0, 1, 0, 8, F, F), 0, 'recorded, not checked');
  const graph = Number(ops.graphEnd());
  assert.notEqual(ops.graphLaunch(graph), 0);
  assert.match(ops.lastError(), /vt_linear: bad shape/);
  assert.equal(ops.graphDestroy(graph), 0);
  x.dispose();
});

test('VLLM_TS_CPU_GRAPH_PROFILE: a destroyed graph reports its launches and every op it recorded', () => {
  // In a child process: the switch is read once per process.
  const child = `
    import { cpu, f32, DType } from ${JSON.stringify(new URL('./helpers.ts', import.meta.url).href)};
    const ops = cpu(1);
    const a = f32(ops, new Float32Array(64).fill(1)), w = f32(ops, new Float32Array(8 * 64).fill(0.5));
    const y = f32(ops, new Float32Array(8));
    if (ops.graphBegin()) throw new Error(ops.lastError());
    ops.add(a.addr, a.addr, a.addr, 64, DType.F32);
    ops.linear(y.addr, a.addr, w.addr, 0, 1, 8, 64, DType.F32, DType.F32);
    ops.add(a.addr, a.addr, a.addr, 64, DType.F32);
    const g = ops.graphEnd();
    for (let i = 0; i < 3; i++) if (ops.graphLaunch(g)) throw new Error(ops.lastError());
    console.log(JSON.stringify(Array.from(y.toF32())));
    ops.graphDestroy(g);
  `;
  const run = (env: Record<string, string>) =>
    spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child], { encoding: 'utf8', env: { ...process.env, ...env } });
  const on = run({ VLLM_TS_CPU_GRAPH_PROFILE: '1' });
  assert.equal(on.status, 0, on.stderr);
  // a = 1 -> 2 (first add); y = 64 * 2 * 0.5 per launch 1, then a keeps doubling: 2, 8, 32 -> y = 64, 256, 1024.
  assert.deepEqual(JSON.parse(on.stdout), new Array(8).fill(1024));
  assert.match(on.stderr, /CPU graph 0x[0-9a-f]+: 3 ops, 3 launches, [\d.]+ us per launch/);
  assert.match(on.stderr, /vt_add +x2 /);
  assert.match(on.stderr, /vt_linear +x1 /);
  const off = run({ VLLM_TS_CPU_GRAPH_PROFILE: '' });
  assert.equal(off.status, 0, off.stderr);
  assert.deepEqual(JSON.parse(off.stdout), new Array(8).fill(1024));
  assert.doesNotMatch(off.stderr, /CPU graph/);
});

test('every compute op of the CPU library records itself during a capture (VT_CAPTURE first)', () => {
  // An op without it would run at capture time and be missing from every replay.
  const notOps = /^vt_(graph_\w+|malloc|free|host_ptr|copy_h2d|copy_d2h|init|num_threads|last_error|backend_name|device_name|device_count|synchronize|mem_info|nccl_\w+|all_reduce|all_gather)$/;
  const dir = new URL('../../csrc/cpu/', import.meta.url);
  const missing: string[] = [];
  let ops = 0;
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpp'))) {
    const src = readFileSync(new URL(file, dir), 'utf8');
    for (const m of src.matchAll(/^(?:extern "C" )?int (vt_\w+)\([^)]*\)\s*\{\n(.*)\n/gm)) {
      if (notOps.test(m[1])) continue;
      ops++;
      if (!m[2].includes(`VT_CAPTURE(${m[1]}(`)) missing.push(`${file}: ${m[1]}`);
    }
  }
  assert.ok(ops >= 25, `found only ${ops} ops: the pattern no longer matches the sources`);
  assert.deepEqual(missing, []);
});
