// What crosses between the driver (rank 0, in the engine core's thread) and the
// other ranks of a tensor-parallel group, whether a rank is a thread (CPU) or a
// process (CUDA, through the relay thread). Plain, structured-cloneable data.
import type { ResolvedEngineArgs } from '../config/engine_args.js';
import type { ModelConfig } from '../config/types.js';
import type { SchedulerOutput } from '../core/sched/output.js';
import type { InProcessGroupHandle } from '../distributed/in_process.js';

/** How a rank joins its group's communicator. */
export type CommSpec = { kind: 'in_process'; group: InProcessGroupHandle } | { kind: 'nccl'; uniqueId: string };

export interface RankInit {
  config: ResolvedEngineArgs;
  modelConfig: ModelConfig;
  rank: number;
  size: number;
  comm: CommSpec;
}

/** abort: the driver failed at start-up (the relay kills the rank processes). */
export type ToRank = { type: 'execute'; so: SchedulerOutput } | { type: 'shutdown' } | { type: 'abort' };

/**
 * loaded: the rank's modules are up (it is about to build its worker); ready: its worker
 * is built; relay_up: the relay thread of CUDA ranks has started their processes.
 */
export type FromRank =
  | { type: 'loaded'; rank: number }
  | { type: 'ready'; rank: number }
  | { type: 'error'; rank: number; message: string }
  | { type: 'relay_up' };
