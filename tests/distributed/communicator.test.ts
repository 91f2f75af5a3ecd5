// The communicators. In-process: N worker threads (and this one) exchange through
// one SharedArrayBuffer, a real collective: all-reduce sums in rank order (the same
// bits on every rank), all-gather is rank-major, the buffer grows with the tensors,
// and a rank that fails wakes the others with its error instead of leaving them
// waiting. NCCL: where libnccl is looked for, and the clear error when it is absent.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { createInProcessGroup, InProcessCommunicator, type InProcessGroupHandle } from '../../src/distributed/in_process.js';
import { loadNccl, ncclCandidates, ncclUniqueId } from '../../src/distributed/nccl.js';
import { DType, isAvailable, loadNative, Tensor } from '../../src/native/index.js';

const here = new URL('./communicator_rank.ts', import.meta.url).href;
const tsx = import.meta.resolve('tsx/esm/api');

function rankThread(group: InProcessGroupHandle, rank: number, n: number, fail?: string): Worker {
  const code = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(here)}); });`;
  return new Worker(code, { eval: true, workerData: { group, rank, n, fail } });
}

/** What rank r contributes: [n] values of rank r (communicator_rank.ts makes the same). */
function contribution(rank: number, n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.fround(Math.sin(i * 0.1 + rank) * (rank + 1)));
}

for (const N of [2, 4]) {
  test(`in-process all-reduce and all-gather over ${N} threads: sums in rank order, rank-major gathers, the same on every rank`, async () => {
    const ops = loadNative('cpu');
    ops.init(0, 1);
    const group = createInProcessGroup(N);
    const n = 100_003; // bigger than the buffer starts: it grows
    const others = Array.from({ length: N - 1 }, (_, i) => rankThread(group, i + 1, n));
    const replies = others.map((t) => new Promise<{ sum: Float32Array; gathered: Float32Array; numbers: number[] }>((ok, ko) => {
      t.once('message', ok);
      t.once('error', ko);
    }));
    const exits = others.map((t) => new Promise((ok) => t.once('exit', ok)));
    const comm = new InProcessCommunicator(group, 0);
    const x = Tensor.fromF32(ops, contribution(0, n), [n]);
    comm.allReduce(x);
    const gathered = Tensor.empty(ops, [N, n], DType.F32);
    comm.allGather(Tensor.fromF32(ops, contribution(0, n), [n]), gathered);
    const numbers = comm.allGatherNumbers(1000);
    const want = new Float32Array(n);
    for (let r = 0; r < N; r++) {
      const c = contribution(r, n);
      for (let i = 0; i < n; i++) want[i] = Math.fround(want[i] + c[i]);
    }
    assert.deepEqual(x.toF32(), want, 'rank 0 sum');
    const g = gathered.toF32();
    for (let r = 0; r < N; r++) assert.deepEqual(g.subarray(r * n, (r + 1) * n), contribution(r, n), `gathered rank ${r}`);
    assert.deepEqual(numbers, Array.from({ length: N }, (_, r) => 1000 + r));
    for (const rep of await Promise.all(replies)) {
      assert.deepEqual(rep.sum, want, 'every rank holds the same sum');
      assert.deepEqual(rep.gathered, g);
    }
    await Promise.all(exits);
  });
}

test('a failed rank wakes the others with its error instead of leaving them in the barrier', () => {
  const ops = loadNative('cpu');
  const group = createInProcessGroup(2);
  const comm = new InProcessCommunicator(group, 0);
  // Rank 1's thread fails 200 ms into rank 0's wait in the barrier.
  rankThread(group, 1, 1, 'out of memory loading its shard');
  assert.throws(() => comm.allReduce(Tensor.fromF32(ops, Float32Array.of(1), [1])), /tensor-parallel rank 1 failed: out of memory loading its shard/);
});

test('libnccl is looked for where vLLM and the CUDA stack put it; a named file is used alone', () => {
  assert.deepEqual(ncclCandidates({ VLLM_TS_NCCL_PATH: '/opt/x/libnccl.so.2' }), { named: true, paths: ['/opt/x/libnccl.so.2'] });
  assert.deepEqual(ncclCandidates({ VLLM_NCCL_SO_PATH: '/opt/y/libnccl.so.2' }), { named: true, paths: ['/opt/y/libnccl.so.2'] });
  const auto = ncclCandidates({});
  assert.equal(auto.named, false);
  assert.equal(auto.paths.at(-1), 'libnccl.so.2', 'last: the dynamic loader\'s own search');
});

test('a missing libnccl fails with an error naming what to install and every place tried', { skip: !isAvailable('cuda') && 'the CUDA library is not built' }, () => {
  const ops = loadNative('cuda');
  assert.throws(() => loadNccl(ops, { VLLM_TS_NCCL_PATH: '/nonexistent/libnccl.so.2' }),
    /needs NCCL, and it could not be loaded: VLLM_TS_NCCL_PATH \/ VLLM_NCCL_SO_PATH names a file that is not a loadable libnccl\. Tried: vt_nccl_load: cannot load \/nonexistent\/libnccl\.so\.2/);
});

/** A libnccl this machine has (the candidates that exist as files), or null. */
function installedNccl(): string | null {
  if (!isAvailable('cuda')) return null;
  return ncclCandidates().paths.find((p) => p.startsWith('/')) ?? null;
}

test('a real libnccl loads with NVLink multicast forced off, reports its version and makes a 128-byte unique id (no GPU needed)',
  { skip: !installedNccl() && 'no libnccl here (pip install nvidia-nccl-cu13, or VLLM_TS_NCCL_PATH)' }, () => {
    const ops = loadNative('cuda');
    const saved = process.env.NCCL_NVLS_ENABLE;
    process.env.NCCL_NVLS_ENABLE = '1';
    try {
      const path = loadNccl(ops);
      assert.equal(path, installedNccl());
      assert.equal(process.env.NCCL_NVLS_ENABLE, '0', 'a user setting does not turn multicast back on');
      assert.ok(ops.ncclVersion() >= 20900, `NCCL ${ops.ncclVersion()}: graph capture of collectives needs 2.9 or later`);
      assert.match(ncclUniqueId(ops), /^[0-9a-f]{256}$/);
    } finally {
      if (saved === undefined) delete process.env.NCCL_NVLS_ENABLE;
      else process.env.NCCL_NVLS_ENABLE = saved;
    }
  });
