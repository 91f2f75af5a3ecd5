// The executor: what the engine core runs its steps on (vLLM V1's Executor). At
// tensor-parallel size 1 it is the one Worker, and `runner` is that Worker's
// ModelRunner itself (the step path is the one it always was). At size N > 1,
// multi_rank_executor.ts starts N ranks under this one engine core and scheduler;
// every step's SchedulerOutput goes to all of them, rank 0's output comes back.
import type { ResolvedEngineArgs } from '../config/engine_args.js';
import { verifyTensorParallel } from '../config/parallel_config.js';
import type { ModelConfig } from '../config/types.js';
import type { PhaseTimer } from '../worker/model_runner.js';
import { Worker } from '../worker/worker.js';
import type { Executor } from './abstract.js';
import { createMultiRankExecutor } from './multi_rank_executor.js';

export type { Executor, StepRunner } from './abstract.js';

export async function createExecutor(config: ResolvedEngineArgs, modelConfig: ModelConfig, timer?: PhaseTimer): Promise<Executor> {
  if (config.tensorParallelSize === 1) {
    const worker = Worker.create(config, modelConfig, timer);
    return { info: worker.info, runner: worker.runner, shutdown: () => worker.shutdown() };
  }
  verifyTensorParallel(modelConfig, config.tensorParallelSize);
  return createMultiRankExecutor(config, modelConfig, timer);
}
