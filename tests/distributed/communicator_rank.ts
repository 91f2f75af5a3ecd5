// One rank of communicator.test.ts's in-process group: the same collectives as rank 0, in the same order.
import { parentPort, workerData } from 'node:worker_threads';
import { abortInProcessGroup, InProcessCommunicator, type InProcessGroupHandle } from '../../src/distributed/in_process.js';
import { DType, loadNative, Tensor } from '../../src/native/index.js';

const { group, rank, n, fail } = workerData as { group: InProcessGroupHandle; rank: number; n: number; fail?: string };
if (fail) {
  // A rank that fails while the others wait in a collective.
  await new Promise((ok) => setTimeout(ok, 200));
  abortInProcessGroup(group, rank, fail);
  process.exit(0);
}
const contribution = (r: number) => Float32Array.from({ length: n }, (_, i) => Math.fround(Math.sin(i * 0.1 + r) * (r + 1)));
const ops = loadNative('cpu');
const comm = new InProcessCommunicator(group, rank);
const x = Tensor.fromF32(ops, contribution(rank), [n]);
comm.allReduce(x);
const gathered = Tensor.empty(ops, [group.worldSize, n], DType.F32);
comm.allGather(Tensor.fromF32(ops, contribution(rank), [n]), gathered);
const numbers = comm.allGatherNumbers(1000 + rank);
parentPort!.postMessage({ sum: x.toF32(), gathered: gathered.toF32(), numbers });
