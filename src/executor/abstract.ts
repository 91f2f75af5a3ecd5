// What the engine core runs its steps on (vLLM V1's Executor): rank 0's worker
// info, a step runner, and shutdown.
import type { ModelRunnerOutput, SchedulerOutput } from '../core/sched/output.js';
import type { WorkerInfo } from '../worker/worker.js';

export interface StepRunner {
  execute(so: SchedulerOutput): ModelRunnerOutput;
}

export interface Executor {
  /** Rank 0's worker: device, KV cache blocks (the same on every rank), weights. */
  readonly info: WorkerInfo;
  readonly runner: StepRunner;
  shutdown(): void;
}
