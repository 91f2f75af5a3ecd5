// EngineCore: the inner loop — schedule, execute, update — over one executor
// (one Worker, or the ranks of --tensor-parallel-size).
// Runs in the AsyncLLM's worker thread (or in-process under LLMEngine).
import { type EngineArgs, type ResolvedEngineArgs, resolveEngineArgs } from '../config/engine_args.js';
import { loadModelConfig } from '../config/model_config.js';
import type { CacheConfig, ModelConfig, SchedulerConfig } from '../config/types.js';
import { Request, RequestStatus } from '../core/request.js';
import { Scheduler } from '../core/sched/scheduler.js';
import { EngineViewRecorder } from '../core/sched/engine_view_recorder.js';
import { initLogger } from '../logger.js';
import { fmtBytes, type WorkerInfo } from '../worker/worker.js';
import { createExecutor, type Executor } from '../executor/executor.js';
import { StepTimer, stepTimer } from '../metrics/step_timer.js';
import type { EngineCoreOutputs, EngineCoreRequest, SchedulerStats } from '../core/types.js';
import { StructuredOutputManager } from '../structured_output/manager.js';
import { reasoningTokenIds } from '../structured_output/reasoning_end.js';
import { initXgrammar } from '../structured_output/xgrammar_loader.js';

const logger = initLogger('core');

export function makeSchedulerConfig(config: ResolvedEngineArgs, modelConfig: ModelConfig): SchedulerConfig {
  return {
    maxNumSeqs: config.maxNumSeqs,
    maxNumBatchedTokens: config.maxNumBatchedTokens,
    maxModelLen: modelConfig.maxModelLen,
    enableChunkedPrefill: true,
    maxWaitingRequests: config.maxWaitingRequests,
  };
}

function reasoningIds(dir: string, parser: string): { reasoningEndTokenIds: number[]; reasoningStartTokenIds: number[] } {
  const { start, end } = reasoningTokenIds(dir, parser);
  return { reasoningEndTokenIds: end, reasoningStartTokenIds: start };
}

export class EngineCore {
  private constructor(
    readonly modelConfig: ModelConfig,
    readonly cacheConfig: CacheConfig,
    readonly schedulerConfig: SchedulerConfig,
    readonly workerInfo: WorkerInfo,
    readonly scheduler: Scheduler,
    private readonly executor: Executor,
    readonly structuredOutputManager: StructuredOutputManager,
    /** Set with enableEngineView only (the view costs nothing otherwise). */
    private readonly viewRecorder: EngineViewRecorder | null,
  ) {}

  static async create(args: EngineArgs, modelConfig?: ModelConfig): Promise<EngineCore> {
    // The one place EngineArgs' defaults are applied; everything below reads the resolved record.
    const config = resolveEngineArgs(args);
    const mc = modelConfig ?? loadModelConfig(config.model, { maxModelLen: config.maxModelLen });
    const schedulerConfig = makeSchedulerConfig(config, mc);
    const t0 = performance.now();
    // One worker, or (--tensor-parallel-size N) N ranks fed the same SchedulerOutput.
    const executor = await createExecutor(config, mc, stepTimer);
    const info = executor.info;
    const cacheConfig: CacheConfig = {
      blockSize: info.blockSize,
      numBlocks: info.numBlocks,
      enablePrefixCaching: config.enablePrefixCaching,
      slidingWindow: info.slidingWindow,
    };
    await initXgrammar();
    const tokenizerDir = args.tokenizer ?? args.model;
    const structuredOutputManager = new StructuredOutputManager({
      tokenizerDir,
      vocabSize: mc.vocabSize,
      ...(args.reasoningParser ? reasoningIds(tokenizerDir, args.reasoningParser) : {}),
    });
    const numSpeculativeTokens = config.speculativeConfig?.numSpeculativeTokens ?? 0;
    const scheduler = new Scheduler(schedulerConfig, cacheConfig, { structuredOutputManager, numSpeculativeTokens });
    const tokens = (info.numBlocks - 1) * info.blockSize;
    logger.info(
      `${mc.architectures[0]} on ${info.device} (${info.deviceName}): weights ${fmtBytes(info.weightBytes)} loaded in ` +
        `${((performance.now() - t0) / 1000).toFixed(2)} s; KV cache ${info.numBlocks} blocks of ${info.blockSize} ` +
        `(${tokens} tokens, ${fmtBytes(info.kvCacheBytes)}); maximum concurrency for ${mc.maxModelLen} tokens per request: ` +
        `${(tokens / mc.maxModelLen).toFixed(2)}x`,
    );
    const viewRecorder = config.enableEngineView ? new EngineViewRecorder(scheduler) : null;
    return new EngineCore(mc, cacheConfig, schedulerConfig, info, scheduler, executor, structuredOutputManager, viewRecorder);
  }

  /** req.samplingParams must be a SamplingParams (the thread entry, core_worker.ts, re-hydrates it once). */
  addRequest(req: EngineCoreRequest): void {
    this.scheduler.addRequest(Request.fromEngineCoreRequest(req, this.scheduler.kvCacheManager.blockHasher));
  }

  abortRequests(ids: string[]): void {
    this.scheduler.finishRequests(ids, RequestStatus.FINISHED_ABORTED);
  }

  /** One step: schedule, run the model, and turn its samples into outputs. */
  step(): EngineCoreOutputs {
    stepTimer.start();
    // Grammars compile on the grammar thread: schedule() only reads its notices and posts the step's fill.
    const so = this.scheduler.schedule();
    this.viewRecorder?.onSchedule(so);
    stepTimer.mark('schedule');
    const out = this.executor.runner.execute(so);
    const outputs = this.scheduler.updateFromOutput(so, out);
    this.viewRecorder?.onOutputs(outputs);
    const som = this.structuredOutputManager;
    if (!this.scheduler.hasRequests()) som.flush(); // going idle: the last releases go out now
    // Only compiling requests are left: sleep until a grammar is ready (or a few ms) instead of spinning.
    if (so.totalNumScheduledTokens === 0 && som.numPending > 0) som.waitForNotice();
    stepTimer.mark('update');
    return outputs;
  }

  /** The stats sent once the engine runs out of requests (step() is not called when idle). */
  idleStats(): SchedulerStats {
    const stats = this.scheduler.makeStats();
    this.viewRecorder?.onIdle(stats);
    return stats;
  }

  hasUnfinishedRequests(): boolean {
    return this.scheduler.hasRequests();
  }

  resetPrefixCache(): boolean {
    return this.scheduler.resetPrefixCache();
  }

  /** Blocks in the pool that are free (a leak check: numBlocks - 1 when idle). */
  get numFreeBlocks(): number {
    return this.scheduler.kvCacheManager.getNumFreeBlocks();
  }

  shutdown(): void {
    if (StepTimer.enabled) logger.info(`step timing (VLLM_TS_STEP_TIMING):\n${stepTimer.report()}`);
    this.structuredOutputManager.shutdown();
    this.executor.shutdown();
  }
}
