// The tensor-parallel ops of the CPU library against TypeScript references:
// vt_vocab_embedding (this rank's rows, zeros for other ids; the ranks' outputs sum
// to the whole table's lookup) and vt_copy_2d (an all-gather's rank-major output laid
// out row by row); and the CPU library's NCCL entry points, which refuse by name.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { check, DType, Tensor } from '../../src/native/index.js';
import { cpu, rng } from './helpers.js';

test('vt_vocab_embedding: each rank looks up its rows, zeros elsewhere; the ranks sum to vt_embedding', () => {
  const ops = cpu();
  const V = 37, h = 12, T = 9, scale = 1.5;
  const r = rng(7);
  const table = Float32Array.from({ length: V * h }, () => r() - 0.5);
  const ids = Int32Array.from({ length: T }, () => Math.floor(r() * V));
  const idsT = Tensor.fromI32(ops, ids, [T]);
  const whole = Tensor.empty(ops, [T, h], DType.F32);
  const w = Tensor.fromF32(ops, table, [V, h]);
  check(ops, ops.embedding(whole.addr, w.addr, idsT.addr, T, h, scale, DType.F32, DType.F32), 'embedding');
  for (const N of [2, 3, 4]) {
    const per = Math.ceil(V / N);
    const sum = new Float32Array(T * h);
    for (let rank = 0; rank < N; rank++) {
      const start = rank * per, end = Math.min(V, start + per);
      const shard = Tensor.fromF32(ops, table.slice(start * h, end * h), [end - start, h]);
      const out = Tensor.empty(ops, [T, h], DType.F32);
      check(ops, ops.vocabEmbedding(out.addr, shard.addr, idsT.addr, T, h, scale, start, end, DType.F32, DType.F32), 'vocab_embedding');
      const got = out.toF32();
      for (let t = 0; t < T; t++) {
        const mine = ids[t] >= start && ids[t] < end;
        for (let k = 0; k < h; k++) {
          const want = mine ? table[ids[t] * h + k] * scale : 0;
          assert.equal(got[t * h + k], Math.fround(want), `N=${N} rank ${rank} token ${t} col ${k}`);
          sum[t * h + k] += got[t * h + k];
        }
      }
      shard.dispose();
      out.dispose();
    }
    assert.deepEqual(sum, whole.toF32(), `N=${N}: the ranks' rows sum to the whole lookup`);
  }
  assert.notEqual(ops.vocabEmbedding(whole.addr, w.addr, idsT.addr, T, h, 1, 5, 2, DType.F32, DType.F32), 0);
  assert.match(ops.lastError(), /vt_vocab_embedding: bad shape/);
});

test('vt_copy_2d lays a rank-major [ranks, n, w] out as [n, ranks * w], and clips a short last rank', () => {
  const ops = cpu();
  const ranks = 3, n = 4, w = 5, V = 13; // the last rank holds 3 real columns of its 5
  const gathered = Float32Array.from({ length: ranks * n * w }, (_, i) => i);
  const src = Tensor.fromF32(ops, gathered, [ranks, n, w]);
  const dst = Tensor.zeros(ops, [n, V], DType.F32);
  for (let r = 0; r < ranks; r++) {
    const width = Math.min(w, V - r * w);
    check(ops, ops.copy2d(dst.addr + r * w * 4, V * 4, src.addr + r * n * w * 4, w * 4, width * 4, n), 'copy_2d');
  }
  const got = dst.toF32();
  for (let row = 0; row < n; row++) for (let c = 0; c < V; c++) {
    const r = Math.floor(c / w);
    assert.equal(got[row * V + c], gathered[r * n * w + row * w + (c % w)], `row ${row} col ${c}`);
  }
  assert.notEqual(ops.copy2d(dst.addr, 4, src.addr, 8, 8, 1), 0, 'a row wider than its pitch');
});

test('the CPU library has no NCCL and says which communicator its ranks use', () => {
  const ops = cpu();
  assert.notEqual(ops.ncclLoad('libnccl.so.2'), 0);
  assert.match(ops.lastError(), /CPU library has no NCCL; CPU ranks use the in-process communicator/);
  assert.notEqual(ops.allReduce(0, 1, DType.F32), 0);
  assert.equal(ops.ncclVersion(), 0);
});
