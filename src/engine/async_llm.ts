// AsyncLLM (vLLM's v1 AsyncLLM): the engine front end for serving. The main thread
// tokenizes, validates, detokenizes and streams; the EngineCore (scheduler, KV
// cache, model) runs in a worker thread behind EngineCoreClient. The main thread
// never runs model code, so HTTP stays responsive while the model computes.
import { initXgrammar } from '../structured_output/xgrammar_loader.js';
import type { PoolingParams } from '../pooling_params.js';
import type { EngineArgs } from '../config/engine_args.js';
import { loadModelConfig } from '../config/model_config.js';
import { resolveModelFiles } from '../hub/index.js';
import type { CacheConfig, ModelConfig, SchedulerConfig } from '../config/types.js';
import { EngineDeadError, EngineOverloadedError, InvalidRequestError } from '../errors.js';
import { type IterationStats, newIterationStats, ParentTiming, RequestTiming, type StatLogger } from '../metrics/stats.js';
import type { RequestOutput } from '../outputs.js';
import type { SamplingParams, SamplingParamsInit } from '../sampling_params.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { EngineCoreClient } from './core_client.js';
import { OutputProcessor } from './output_processor.js';
import { fanOut, ParentRequest } from './parallel_sampling.js';
import { Processor, type PromptType } from './processor.js';
import { RequestStream } from './request_stream.js';
import type { EngineCoreOutputs, FinishReason, SchedulerStats } from '../core/types.js';

export interface GenerateOptions {
  /** Aborting it aborts the request in the engine; the iterator then throws the signal's reason. */
  signal?: AbortSignal;
  priority?: number;
  cacheSalt?: string;
  /** Seconds since the epoch (default: now). */
  arrivalTime?: number;
  /** An embedding request: the prompt is pooled (one output with `embedding`) instead of generating. */
  poolingParams?: PoolingParams;
}

const EMPTY_STATS: SchedulerStats = {
  numRunningReqs: 0,
  numWaitingReqs: 0,
  kvCacheUsage: 0,
  prefixCacheQueries: 0,
  prefixCacheHits: 0,
  numPreemptions: 0,
};

export class AsyncLLM {
  private readonly streams = new Map<string, RequestStream>();
  /** Removes the AbortSignal listener of a request, if it has one. */
  private readonly detachers = new Map<string, () => void>();
  private readonly timings = new Map<string, RequestTiming>();
  private readonly statLoggers: StatLogger[] = [];
  private lastStats: SchedulerStats = { ...EMPTY_STATS };
  private stopping = false;
  private readonly processor: Processor;
  private readonly outputProcessor: OutputProcessor;

  private constructor(
    readonly args: EngineArgs,
    readonly tokenizer: Tokenizer,
    private readonly core: EngineCoreClient,
  ) {
    this.processor = new Processor(core.modelConfig, tokenizer, args);
    this.outputProcessor = new OutputProcessor(tokenizer);
  }

  /** Loads the config and tokenizer here, then starts the engine core in its worker and waits for it. */
  static async create(args: EngineArgs): Promise<AsyncLLM> {
    args = await resolveModelFiles(args);
    // Fail fast, before the worker loads weights, on a bad folder or --max-model-len.
    loadModelConfig(args.model, { maxModelLen: args.maxModelLen });
    const tokenizer = Tokenizer.fromPretrained(args.tokenizer ?? args.model);
    await initXgrammar(); // the processor validates structured outputs with it
    let llm: AsyncLLM | null = null;
    const core = await EngineCoreClient.start(args, {
      onOutputs: (outputs) => llm?.handleOutputs(outputs),
      onDead: (error) => llm?.failAll(error),
    });
    llm = new AsyncLLM(args, tokenizer, core);
    return llm;
  }

  get modelConfig(): ModelConfig {
    return this.core.modelConfig;
  }

  get cacheConfig(): CacheConfig {
    return this.core.cacheConfig;
  }

  get schedulerConfig(): SchedulerConfig {
    return this.core.schedulerConfig;
  }

  /** Sampling defaults from the model's generation_config.json ({} with --generation-config vllm). */
  get defaultSamplingOverrides(): Partial<SamplingParamsInit> {
    return this.processor.defaultOverrides;
  }

  /** The scheduler as of the last step (running / waiting requests, KV cache usage). */
  get schedulerStats(): SchedulerStats {
    return this.lastStats;
  }

  /** Requests accepted and not finished yet (n > 1 counts once). */
  get numUnfinishedRequests(): number {
    return this.streams.size;
  }

  isHealthy(): boolean {
    return !this.core.isDead;
  }

  addStatLogger(logger: StatLogger): void {
    this.statLoggers.push(logger);
  }

  /**
   * Validates and queues a request; returns the stream of its outputs. Throws at once
   * (before anything reaches the engine core) when the request is invalid, the
   * engine is dead, or the waiting queue is full. Leaving the iteration early or
   * aborting `opts.signal` aborts the request in the engine core.
   */
  generate(prompt: PromptType, params: SamplingParams, requestId: string, opts: GenerateOptions = {}): AsyncGenerator<RequestOutput, void, undefined> {
    if (this.core.deadError) throw this.core.deadError;
    if (this.stopping) throw new EngineOverloadedError('The server is shutting down and accepts no new requests');
    if (this.streams.has(requestId)) throw new InvalidRequestError(`Request id ${requestId} is already in use; give each request its own id`, 'request_id');
    opts.signal?.throwIfAborted();
    this.checkWaitingLimit();

    const arrivalTime = opts.arrivalTime ?? Date.now() / 1000;
    const { request, promptText } = this.processor.processInputs(requestId, prompt, params, {
      arrivalTime,
      priority: opts.priority,
      cacheSalt: opts.cacheSalt,
    });
    if (opts.poolingParams) request.poolingParams = opts.poolingParams;
    const children = fanOut(request);
    const engineIds = children.map((c) => c.requestId);
    const stream = new RequestStream(requestId, engineIds, request.samplingParams.outputKind === 'delta', () =>
      this.abort(requestId),
    );
    this.streams.set(requestId, stream);
    const parent = children.length > 1 ? new ParentRequest(requestId, children.length) : null;
    const parentTiming = new ParentTiming(children.length);
    for (const [i, child] of children.entries()) {
      this.outputProcessor.addRequest(child, promptText, parent, i);
      const maxTokens = child.poolingParams ? null : child.samplingParams.maxTokens; // an embedding has no max_tokens
      this.timings.set(child.requestId, new RequestTiming(arrivalTime, child.promptTokenIds.length, maxTokens, parentTiming));
      this.core.addRequest(child);
    }

    const signal = opts.signal;
    if (signal) {
      const onAbort = () => {
        stream.fail(signal.reason ?? new DOMException('The request was aborted', 'AbortError'));
        this.abort(requestId);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.detachers.set(requestId, () => signal.removeEventListener('abort', onAbort));
    }
    return stream;
  }

  /** Aborts a request (all its children) in the engine core; its stream ends. */
  abort(requestId: string): void {
    const stream = this.streams.get(requestId);
    if (!stream) return;
    this.removeStream(requestId);
    const ids = stream.engineRequestIds;
    this.outputProcessor.abortRequests(ids);
    this.core.abortRequests(ids);
    const stats = newIterationStats(Date.now() / 1000);
    for (const id of ids) this.finishTiming(id, 'abort', stats);
    this.record(null, stats);
    stream.close();
  }

  /** Frees the prefix cache's unused blocks; false if some block is still in use. */
  resetPrefixCache(): Promise<boolean> {
    return this.core.call<boolean>('resetPrefixCache');
  }

  /** Refuses new requests, aborts those in flight and stops the engine core. */
  async shutdown(): Promise<void> {
    this.stopping = true;
    for (const id of [...this.streams.keys()]) this.abort(id);
    await this.core.shutdown();
  }

  /** Stops accepting requests (for a graceful drain); the ones in flight go on. */
  stopAccepting(): void {
    this.stopping = true;
  }

  /** Fault injection for tests: the engine core's worker throws. */
  crashEngineForTesting(): void {
    this.core.crashForTesting();
  }

  private removeStream(requestId: string): void {
    this.streams.delete(requestId);
    this.detachers.get(requestId)?.();
    this.detachers.delete(requestId);
  }

  private checkWaitingLimit(): void {
    const limit = this.core.schedulerConfig.maxWaitingRequests;
    if (!Number.isFinite(limit)) return;
    // NOTE: requests added since the last step are not in lastStats yet, so the
    // estimate counts every accepted engine request that is not running.
    const waiting = Math.max(this.lastStats.numWaitingReqs, this.timings.size - this.lastStats.numRunningReqs);
    if (waiting >= limit) {
      throw new EngineOverloadedError(
        `The server is overloaded: ${waiting} requests are already waiting (limit ${limit}, --max-waiting-requests); retry later`,
      );
    }
  }

  private finishTiming(engineId: string, reason: FinishReason, stats: IterationStats): void {
    const t = this.timings.get(engineId);
    if (!t) return;
    this.timings.delete(engineId);
    t.onFinished(reason, stats.timestamp, stats);
  }

  private record(schedulerStats: SchedulerStats | null, stats: IterationStats): void {
    for (const logger of this.statLoggers) {
      try {
        logger.record(schedulerStats, stats);
      } catch (e) {
        console.error(`stat logger failed: ${(e as Error).message}`);
      }
    }
  }

  private handleOutputs(outputs: EngineCoreOutputs): void {
    const now = Date.now() / 1000;
    const stats = newIterationStats(now, true);
    for (const o of outputs.outputs) {
      const timing = this.timings.get(o.requestId);
      timing?.onEvents(o.events);
      timing?.onTokens(o.newTokenIds.length, now, stats);
      if (o.finishReason !== null) this.finishTiming(o.requestId, o.finishReason, stats);
    }
    try {
      const { requestOutputs, reqsToAbort } = this.outputProcessor.processOutputs(outputs.outputs);
      if (reqsToAbort.length > 0) {
        // Stopped by a stop string: the detokenizer finished them, the core must drop them.
        for (const id of reqsToAbort) this.finishTiming(id, 'stop', stats);
        this.core.abortRequests(reqsToAbort);
      }
      for (const out of requestOutputs) {
        const stream = this.streams.get(out.requestId);
        if (!stream) continue;
        stream.push(out);
        if (out.finished) this.removeStream(out.requestId);
      }
    } catch (e) {
      // A bug in output processing fails the requests of this step, not the server.
      const err = new Error(`output processing failed: ${(e as Error).message}`);
      const parents = new Set(outputs.outputs.map((o) => o.requestId.replace(/^\d+_/, '')));
      for (const o of outputs.outputs) parents.add(o.requestId);
      for (const id of parents) {
        const stream = this.streams.get(id);
        if (!stream) continue;
        this.abort(id);
        stream.fail(err);
      }
    }
    if (outputs.schedulerStats) this.lastStats = outputs.schedulerStats;
    this.record(outputs.schedulerStats, stats);
  }

  private failAll(error: EngineDeadError): void {
    const stats = newIterationStats(Date.now() / 1000);
    for (const stream of this.streams.values()) {
      for (const id of stream.engineRequestIds) this.finishTiming(id, 'error', stats);
      stream.fail(error);
      this.removeStream(stream.requestId);
    }
    this.lastStats = { ...EMPTY_STATS };
    this.record(this.lastStats, stats);
  }
}
