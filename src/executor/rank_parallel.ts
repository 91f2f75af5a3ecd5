// A rank's ParallelRank (the Worker's view of its group) from its RankInit: which
// communicator it joins once its device is up.
import type { NativeOps } from '../native/index.js';
import { InProcessCommunicator } from '../distributed/in_process.js';
import { loadNccl, NcclCommunicator } from '../distributed/nccl.js';
import type { ParallelRank } from '../worker/worker.js';
import type { CommSpec } from './rank_messages.js';

export function parallelRank(rank: number, size: number, comm: CommSpec): ParallelRank {
  return {
    rank,
    size,
    connect: (ops: NativeOps) => {
      if (comm.kind === 'in_process') return new InProcessCommunicator(comm.group, rank);
      loadNccl(ops);
      return new NcclCommunicator(ops, rank, size, comm.uniqueId);
    },
  };
}
