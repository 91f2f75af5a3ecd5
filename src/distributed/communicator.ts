// The communicator seam of tensor parallelism: what a sharded layer needs from the
// other ranks of its group (a sum and a gather), whatever carries it. Two
// implementations: in_process.ts (CPU ranks as threads of one process, over a
// SharedArrayBuffer) and nccl.ts (one CUDA process per rank, NCCL through the
// native seam). The layers hold a TensorParallel record; at size 1 they are the
// unsharded layers and hold no communicator at all.
import type { Tensor } from '../native/index.js';

export interface Communicator {
  readonly rank: number;
  readonly worldSize: number;
  /** x [n] -> x [n] in place: the elementwise sum over every rank's x (the same on every rank). */
  allReduce(x: Tensor): void;
  /** x [n] on each rank -> out [worldSize, n], rank-major (out[r] is rank r's x). */
  allGather(x: Tensor, out: Tensor): void;
  /** Every rank's number -> all of them, rank-major (start-up agreements such as the KV cache's size). */
  allGatherNumbers(value: number): number[];
  close(): void;
}

/** This rank's place in its tensor-parallel group. */
export interface TensorParallel {
  readonly rank: number;
  readonly size: number;
  /** null at size 1 (nothing to talk to). */
  readonly comm: Communicator | null;
}

/** The unsharded model: one rank, no communicator. */
export const NO_TENSOR_PARALLEL: TensorParallel = { rank: 0, size: 1, comm: null };

/** The communicator of a group of size > 1 (throws at size 1: an unsharded layer never reduces). */
export function commOf(tp: TensorParallel): Communicator {
  if (!tp.comm) throw new Error(`tensor-parallel rank ${tp.rank} of ${tp.size} has no communicator`);
  return tp.comm;
}
