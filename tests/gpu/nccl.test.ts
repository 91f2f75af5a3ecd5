// NCCL through the native seam on two GPUs, one process each (this one is rank 0,
// tests/gpu/nccl_rank.ts rank 1): f32 and bf16 all-reduce, a bf16 all-gather laid out
// rank-major, an all-reduce captured in a CUDA graph (it runs at each launch, on the
// library's stream), and the start-up number exchange. Both ranks must hold the same
// bits. Skips without two GPUs or libnccl.
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadNccl, ncclUniqueId } from '../../src/distributed/nccl.js';
import { loadNative } from '../../src/native/index.js';
import { contribution, N, type RankResult, runCollectives } from './nccl_collectives.js';
import { multiGpuSkipReason, rankDevice } from './tp_helpers.js';

const skip = multiGpuSkipReason(2);

test('NCCL all-reduce (f32, bf16), all-gather and a graph-captured all-reduce over 2 GPUs', { skip }, async () => {
  const ops = loadNative('cuda');
  loadNccl(ops);
  const id = ncclUniqueId(ops);
  const child = fork(fileURLToPath(new URL('./nccl_rank.ts', import.meta.url)), [], {
    execArgv: ['--import', 'tsx'],
    serialization: 'advanced',
    env: { ...process.env, CUDA_VISIBLE_DEVICES: rankDevice(1), NCCL_NVLS_ENABLE: '0', VT_TEST_RANK: '1', VT_TEST_WORLD: '2', VT_TEST_NCCL_ID: id },
  });
  const theirs = new Promise<RankResult>((ok, ko) => {
    child.once('message', (m) => ok(m as RankResult));
    child.once('exit', (code) => ko(new Error(`rank 1 exited with code ${code} before answering`)));
  });
  const mine = runCollectives(0, 2, id); // blocks in ncclCommInitRank until rank 1 joins
  const other = await theirs;
  const sum = Array.from({ length: N }, (_, i) => contribution(0, i) + contribution(1, i));
  assert.deepEqual(mine.sumF32, sum, 'f32 all-reduce');
  assert.deepEqual(mine.sumBf16, sum, 'bf16 all-reduce (exact: small multiples of 1/8)');
  const gathered = [0, 1].flatMap((r) => Array.from({ length: N }, (_, i) => contribution(r, i)));
  assert.deepEqual(mine.gatheredBf16, gathered, 'all-gather, rank-major');
  assert.deepEqual(mine.graphOnce, new Array(N).fill(3), 'captured all-reduce, first launch: 1 + 2');
  assert.deepEqual(mine.graphTwice, new Array(N).fill(6), 'second launch sums again: 3 + 3');
  assert.deepEqual(mine.numbers, [100, 101]);
  assert.deepEqual(other, mine, 'rank 1 holds the same bits');
});
