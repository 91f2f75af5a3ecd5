// One rank's side of tests/gpu/nccl.test.ts (rank 0 in the test process, rank 1 in
// tests/gpu/nccl_rank.ts): the same NCCL collectives in the same order, eagerly and
// captured in a CUDA graph, results copied back to the host.
import { loadNccl, NcclCommunicator } from '../../src/distributed/nccl.js';
import { check, DType, f32ToBf16, loadNative, Tensor } from '../../src/native/index.js';

export const N = 4099; // not a multiple of any chunk size

/** What rank r contributes at element i (exact in bf16 too: small integers / 8). */
export const contribution = (r: number, i: number) => (((i * 7 + r * 13) % 64) - 32) / 8;

export interface RankResult {
  sumF32: number[];
  sumBf16: number[];
  gatheredBf16: number[];
  graphOnce: number[];
  graphTwice: number[];
  numbers: number[];
}

export function runCollectives(rank: number, size: number, uniqueId: string): RankResult {
  const ops = loadNative('cuda');
  check(ops, ops.init(0, 0), 'cuda init');
  loadNccl(ops);
  const comm = new NcclCommunicator(ops, rank, size, uniqueId);
  const mine = Float32Array.from({ length: N }, (_, i) => contribution(rank, i));
  const read = (t: Tensor) => {
    check(ops, ops.synchronize(), 'synchronize');
    return Array.from(t.toF32());
  };
  try {
    const f32 = Tensor.fromF32(ops, mine, [N]); // [N] f32
    comm.allReduce(f32);
    const bf16 = Tensor.fromHost(ops, f32ToBf16(mine), [N], DType.BF16); // [N] bf16
    comm.allReduce(bf16);
    const part = Tensor.fromHost(ops, f32ToBf16(mine), [N], DType.BF16); // [N] bf16
    const gathered = Tensor.empty(ops, [size, N], DType.BF16); // [size, N] rank-major
    comm.allGather(part, gathered);
    // Captured: the all-reduce runs only when the graph is launched.
    const buf = Tensor.fromF32(ops, new Float32Array(N).fill(rank + 1), [N]); // [N] f32
    check(ops, ops.graphBegin(), 'graph begin');
    comm.allReduce(buf);
    const graph = ops.graphEnd();
    if (!graph) throw new Error(`graph capture failed: ${ops.lastError()}`);
    check(ops, ops.graphLaunch(graph), 'graph launch');
    const graphOnce = read(buf);
    check(ops, ops.graphLaunch(graph), 'graph launch');
    const graphTwice = read(buf);
    ops.graphDestroy(graph);
    const out = { sumF32: read(f32), sumBf16: read(bf16), gatheredBf16: read(gathered), graphOnce, graphTwice, numbers: comm.allGatherNumbers(100 + rank) };
    for (const t of [f32, bf16, part, gathered, buf]) t.dispose();
    return out;
  } finally {
    comm.close();
  }
}
