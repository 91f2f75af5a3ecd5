// vLLM V1's scheduler (v1/core/sched/scheduler.py) at nano-vllm's size.
//
// NOTE on the algorithm: there is no prefill phase and no decode phase. Each
// request has numComputedTokens and numTokens (prompt + outputs); every step
// hands out a token budget (maxNumBatchedTokens) so that the computed count
// catches up: running requests first, in order, then waiting ones FCFS. A
// prompt, a chunk of a long prompt, a prefix-cache hit, a decode and the
// recompute of a preempted request all take that one path.
//
// numComputedTokens advances in schedule() (as in vLLM's _update_after_schedule):
// once scheduled, the tokens count as computed, so the runner's KV writes and
// the next schedule() agree without waiting for the step's result.
// updateFromOutput() then only appends the sampled tokens (which extends the
// request's block hashes) and checks stop conditions; the newly full blocks
// are registered in the prefix cache when the next allocateSlots() covers them.
import type { CacheConfig, SchedulerConfig } from '../../config/types.js';
import type { EngineCoreOutput, EngineCoreOutputs, SchedulerStats } from '../types.js';
import { KVCacheManager } from '../kv_cache/kv_cache_manager.js';
import type { KVCacheBlock } from '../kv_cache/block_pool.js';
import { type Request, RequestStatus, isFinishedStatus } from '../request.js';
import type { CachedRequestData, ModelRunnerOutput, NewRequestData, SchedulerOutput } from './output.js';
import { type RequestQueue, createRequestQueue } from './request_queue.js';
import { checkStop, makeOutput } from './utils.js';
import type { StructuredOutputManager } from '../../structured_output/manager.js';
import { grammarIsReady, stepGrammarBitmask, takeFailedGrammars } from './structured_output.js';
import { scheduledSpecTokens, SpecDecodeTracker } from './spec_decode.js';

export interface SchedulerOptions {
  /** Uses this manager instead of building one from cacheConfig (tests; a shared pool). */
  kvCacheManager?: KVCacheManager;
  /** vLLM's long_prefill_token_threshold: at most this many tokens per request per step (0: no limit). */
  longPrefillTokenThreshold?: number;
  /** Compiles and tracks the grammars of requests with structured outputs. */
  structuredOutputManager?: StructuredOutputManager | null;
  /** K of the speculative config (0: off): sizes the per-position acceptance counts. */
  numSpeculativeTokens?: number;
}

/** What schedule() has decided so far in one step. */
interface ScheduleStep {
  tokenBudget: number;
  /** Admitted from the waiting queue this step. */
  newReqs: Request[];
  /** Already running, scheduled again this step. */
  runningReqs: Request[];
  preemptedReqs: Request[];
  /** Blocks allocated this step, per running request id. */
  newBlocks: Map<string, readonly KVCacheBlock[]>;
  numScheduledTokens: Record<string, number>;
  /** numComputedTokens before this step, per scheduled request id. */
  computedBefore: Map<string, number>;
  /** Draft tokens scheduled this step, per request id (./spec_decode.ts). */
  specTokens: Record<string, number[]>;
}

export class Scheduler {
  readonly kvCacheManager: KVCacheManager;
  readonly maxNumRunningReqs: number;
  readonly maxNumScheduledTokens: number;
  readonly maxModelLen: number;
  readonly enableChunkedPrefill: boolean;
  readonly longPrefillTokenThreshold: number;
  readonly blockSize: number;
  readonly structuredOutputManager: StructuredOutputManager | null;

  /** Unfinished requests by id. */
  readonly requests = new Map<string, Request>();
  readonly waiting: RequestQueue = createRequestQueue('fcfs');
  running: Request[] = [];
  /** Finished or aborted since the last schedule(): the runner is told in the next SchedulerOutput. */
  private finishedReqIds = new Set<string>();
  /** Requests refused by addRequest, reported by the next updateFromOutput. */
  private pendingOutputs: EngineCoreOutput[] = [];
  private numPreemptionsSinceStats = 0;
  totalNumPreemptions = 0;
  /** Speculative decoding: the rollback of rejected drafts and their acceptance counts. */
  private readonly specDecode: SpecDecodeTracker;

  constructor(schedulerConfig: SchedulerConfig, cacheConfig: CacheConfig, options: SchedulerOptions = {}) {
    this.maxNumRunningReqs = schedulerConfig.maxNumSeqs;
    this.maxNumScheduledTokens = schedulerConfig.maxNumBatchedTokens;
    this.maxModelLen = schedulerConfig.maxModelLen;
    this.enableChunkedPrefill = schedulerConfig.enableChunkedPrefill;
    this.longPrefillTokenThreshold = options.longPrefillTokenThreshold ?? 0;
    this.kvCacheManager =
      options.kvCacheManager ??
      new KVCacheManager({
        numBlocks: cacheConfig.numBlocks,
        blockSize: cacheConfig.blockSize,
        maxModelLen: schedulerConfig.maxModelLen,
        enableCaching: cacheConfig.enablePrefixCaching,
        slidingWindow: cacheConfig.slidingWindow ?? null,
      });
    this.blockSize = this.kvCacheManager.blockSize;
    this.structuredOutputManager = options.structuredOutputManager ?? null;
    this.specDecode = new SpecDecodeTracker(options.numSpeculativeTokens ?? 0);
  }

  addRequest(request: Request): void {
    if (this.requests.has(request.requestId)) {
      throw new Error(`Request id '${request.requestId}' is already in the engine: request ids must be unique.`);
    }
    // Defensive: the processor refuses these before they reach the core.
    const maxPromptBlocks = this.kvCacheManager.blockPool.numBlocks - 1;
    if (
      request.numPromptTokens === 0 ||
      request.numPromptTokens >= this.maxModelLen ||
      Math.ceil((request.numPromptTokens + 1) / this.blockSize) > maxPromptBlocks
    ) {
      request.status = RequestStatus.FINISHED_IGNORED;
      this.pendingOutputs.push(makeOutput(request, [], null, true));
      return;
    }
    const so = request.samplingParams.structuredOutputs;
    if (so) {
      if (this.structuredOutputManager === null) throw new Error('structured outputs need a StructuredOutputManager in the scheduler');
      this.structuredOutputManager.grammarInit(request, so);
      request.status = RequestStatus.WAITING_FOR_FSM;
    }
    this.requests.set(request.requestId, request);
    this.waiting.addRequest(request);
    request.recordEvent('queued');
  }

  /**
   * One step's plan, in vLLM's order: the running requests first, then the
   * waiting ones (unless this step had to preempt: no room for more), then the
   * SchedulerOutput, then the bookkeeping that counts the scheduled tokens as computed.
   */
  schedule(): SchedulerOutput {
    const step: ScheduleStep = { tokenBudget: this.maxNumScheduledTokens, newReqs: [], runningReqs: [], preemptedReqs: [],
      newBlocks: new Map(), numScheduledTokens: {}, computedBefore: new Map(), specTokens: {} };
    if (this.structuredOutputManager !== null) this.finishFailedGrammars(this.structuredOutputManager);
    this.scheduleRunning(step);
    if (step.preemptedReqs.length === 0) this.scheduleWaiting(step);
    const out = this.buildOutput(step);
    if (this.structuredOutputManager !== null) {
      out.grammarBitmask = stepGrammarBitmask(this.structuredOutputManager, this.requests, step.computedBefore, step.numScheduledTokens);
    }
    this.updateAfterSchedule(step);
    return out;
  }

  /** Gives each running request, in order, its next tokens; preempts from the back when the pool runs out. */
  private scheduleRunning(step: ScheduleStep): void {
    let reqIndex = 0;
    while (reqIndex < this.running.length && step.tokenBudget > 0) {
      const request = this.running[reqIndex];
      let numNewTokens = request.numTokensWithSpec - request.numComputedTokens;
      if (this.longPrefillTokenThreshold > 0) numNewTokens = Math.min(numNewTokens, this.longPrefillTokenThreshold);
      numNewTokens = Math.min(numNewTokens, step.tokenBudget, this.maxModelLen - 1 - request.numComputedTokens);
      if (numNewTokens <= 0) {
        // Nothing to compute (should not happen without async scheduling): skip, do not block the others.
        reqIndex++;
        continue;
      }

      // NOTE: when the pool is out of blocks, preempt the LAST running request
      // (the latest arrival among them) and retry; if the victim is the
      // request itself, it cannot run this step. Requests before reqIndex are
      // never victims, so what this step already scheduled stays valid.
      let newBlocks: KVCacheBlock[] | null = null;
      for (;;) {
        newBlocks = this.kvCacheManager.allocateSlots(request, numNewTokens);
        if (newBlocks !== null) break;
        const victim = this.running.pop()!;
        this.preemptRequest(victim);
        step.preemptedReqs.push(victim);
        if (victim === request) break;
      }
      if (newBlocks === null) break;

      step.runningReqs.push(request);
      const spec = scheduledSpecTokens(request, numNewTokens);
      if (spec !== null) step.specTokens[request.requestId] = spec;
      step.newBlocks.set(request.requestId, newBlocks);
      step.numScheduledTokens[request.requestId] = numNewTokens;
      step.computedBefore.set(request.requestId, request.numComputedTokens);
      step.tokenBudget -= numNewTokens;
      reqIndex++;
    }
  }

  /** Admits waiting requests FCFS while the budget, maxNumSeqs and the pool allow (a prefix-cache hit first). */
  private scheduleWaiting(step: ScheduleStep): void {
    const skipped: Request[] = [];
    while (this.waiting.length > 0 && step.tokenBudget > 0) {
      if (this.running.length >= this.maxNumRunningReqs) break;
      const request = this.waiting.peekRequest();
      // A grammar still compiling holds back only its own request (vLLM's skipped_waiting_requests).
      if (request.status === RequestStatus.WAITING_FOR_FSM && !grammarIsReady(request)) {
        skipped.push(this.waiting.popRequest());
        continue;
      }

      // Waiting requests hold no blocks and have computed nothing; a preempted
      // one (outputs included) may hit its own freed, still cached blocks.
      const hit = this.kvCacheManager.getComputedBlocks(request);
      const numComputedTokens = hit.numComputedTokens;

      let numNewTokens = request.numTokens - numComputedTokens;
      if (this.longPrefillTokenThreshold > 0) numNewTokens = Math.min(numNewTokens, this.longPrefillTokenThreshold);
      if (!this.enableChunkedPrefill && numNewTokens > step.tokenBudget) break;
      numNewTokens = Math.min(numNewTokens, step.tokenBudget);

      const newBlocks = this.kvCacheManager.allocateSlots(request, numNewTokens, hit.numComputedTokens, hit.blocks);
      if (newBlocks === null) break; // FCFS: nobody behind it jumps the queue.

      this.waiting.popRequest();
      this.running.push(request);
      step.newReqs.push(request);
      this.kvCacheManager.recordPrefixCacheStats(request, hit.numComputedTokens);
      step.numScheduledTokens[request.requestId] = numNewTokens;
      step.tokenBudget -= numNewTokens;
      request.status = RequestStatus.RUNNING;
      request.recordEvent('scheduled');
      request.numComputedTokens = numComputedTokens;
      step.computedBefore.set(request.requestId, numComputedTokens);
      if (request.numCachedTokens < 0) request.numCachedTokens = numComputedTokens;
    }
    for (const r of skipped.reverse()) this.waiting.prependRequest(r);
  }

  /** Takes the grammar thread's notices; requests whose grammar failed (to compile, or later) end as aborted. */
  private finishFailedGrammars(manager: StructuredOutputManager): void {
    for (const request of takeFailedGrammars(manager, this.requests)) {
      this.finishRequests(request.requestId, RequestStatus.FINISHED_ABORTED);
      this.pendingOutputs.push(makeOutput(request, [], null, true));
    }
  }

  /** The step's SchedulerOutput: full data for newly scheduled requests, what changed for the others. */
  private buildOutput(step: ScheduleStep): SchedulerOutput {
    const newReqsData: NewRequestData[] = step.newReqs.map((req) => ({
      reqId: req.requestId,
      promptTokenIds: req.promptTokenIds.slice(),
      samplingParams: req.samplingParams,
      blockIds: this.kvCacheManager.getBlockIds(req.requestId),
      numComputedTokens: req.numComputedTokens,
      outputTokenIds: req.outputTokenIds.slice(),
      eosTokenIds: req.eosTokenIds.slice(),
      ...(req.poolingParams ? { poolingParams: req.poolingParams } : {}),
    }));
    const cachedReqsData: CachedRequestData = {
      reqIds: step.runningReqs.map((r) => r.requestId),
      newBlockIds: step.runningReqs.map((r) => step.newBlocks.get(r.requestId)!.map((b) => b.blockId)),
      numComputedTokens: step.runningReqs.map((r) => step.computedBefore.get(r.requestId)!),
    };
    return {
      scheduledNewReqs: newReqsData,
      scheduledCachedReqs: cachedReqsData,
      numScheduledTokens: step.numScheduledTokens,
      scheduledSpecDecodeTokens: step.specTokens,
      totalNumScheduledTokens: this.maxNumScheduledTokens - step.tokenBudget,
      finishedReqIds: [...this.finishedReqIds],
      preemptedReqIds: step.preemptedReqs.map((r) => r.requestId),
    };
  }

  /** vLLM's _update_after_schedule: scheduled tokens count as computed from now on (see the note at the top). */
  private updateAfterSchedule(step: ScheduleStep): void {
    for (const reqId of step.computedBefore.keys()) this.requests.get(reqId)!.numComputedTokens += step.numScheduledTokens[reqId];
    this.finishedReqIds = new Set();
  }

  private preemptRequest(request: Request): void {
    this.kvCacheManager.free(request);
    request.status = RequestStatus.PREEMPTED;
    request.recordEvent('preempted');
    request.numComputedTokens = 0;
    request.specTokenIds = [];
    request.numPreemptions++;
    request.pendingPromptLogprobs = null; // the recompute produces them again
    this.numPreemptionsSinceStats++;
    this.totalNumPreemptions++;
    this.waiting.prependRequest(request);
  }

  /**
   * Applies one step's results: appends each request's sampled tokens, checks
   * stop conditions, frees the finished, and returns one output per request
   * that produced tokens or finished (none for a prefill chunk that is not the
   * prompt's last).
   */
  updateFromOutput(schedulerOutput: SchedulerOutput, modelRunnerOutput: ModelRunnerOutput): EngineCoreOutputs {
    const reqIdToIndex = new Map<string, number>();
    modelRunnerOutput.reqIds.forEach((id, i) => reqIdToIndex.set(id, i));
    const outputs = this.pendingOutputs;
    this.pendingOutputs = [];
    const stopped = new Set<Request>();
    if (modelRunnerOutput.pooledOutputs) this.finishPooled(modelRunnerOutput.pooledOutputs, outputs, stopped);

    const scheduledIds = [
      ...schedulerOutput.scheduledCachedReqs.reqIds,
      ...schedulerOutput.scheduledNewReqs.map((r) => r.reqId),
    ];
    for (const reqId of scheduledIds) {
      const request = this.requests.get(reqId);
      // Aborted while the step ran.
      if (request === undefined || request.isFinished) continue;
      const i = reqIdToIndex.get(reqId);

      const promptLogprobs = modelRunnerOutput.promptLogprobs[reqId];
      if (promptLogprobs !== undefined && promptLogprobs.length > 0 && request.numOutputTokens === 0) {
        (request.pendingPromptLogprobs ??= []).push(...promptLogprobs);
      }

      let newTokenIds: number[] = i === undefined ? [] : modelRunnerOutput.sampledTokenIds[i].slice();
      const drafts = schedulerOutput.scheduledSpecDecodeTokens?.[reqId];
      if (drafts !== undefined && newTokenIds.length > 0) this.specDecode.observe(request, drafts, newTokenIds);
      let isStopped = false;
      for (let k = 0; k < newTokenIds.length; k++) {
        request.appendOutputTokenIds(newTokenIds[k]);
        if (request.structuredOutputRequest !== null) this.structuredOutputManager!.acceptTokens(request, [newTokenIds[k]]);
        if (checkStop(request, this.maxModelLen)) {
          newTokenIds = newTokenIds.slice(0, k + 1);
          isStopped = true;
          break;
        }
      }
      if (newTokenIds.length === 0 && !isStopped) continue;
      if (!isStopped) request.specTokenIds = modelRunnerOutput.specTokenIds?.[i!] ?? [];

      let newLogprobs = null;
      const lp = i === undefined ? null : modelRunnerOutput.logprobs[i];
      if (request.samplingParams.logprobs !== null && lp) newLogprobs = lp.slice(0, newTokenIds.length);
      outputs.push(makeOutput(request, newTokenIds, newLogprobs, isStopped));
      if (isStopped) {
        stopped.add(request);
        this.freeRequest(request);
      }
    }
    if (stopped.size > 0) this.running = this.running.filter((r) => !stopped.has(r));

    return { outputs, schedulerStats: this.makeStats(), timestamp: Date.now() / 1000 };
  }

  /** Embedding requests are done once their prompt is pooled: one output each, with the vector, and no tokens. */
  private finishPooled(pooledOutputs: Record<string, number[]>, outputs: EngineCoreOutput[], stopped: Set<Request>): void {
    for (const [reqId, pooled] of Object.entries(pooledOutputs)) {
      const request = this.requests.get(reqId);
      if (request === undefined || request.isFinished) continue; // aborted while the step ran
      request.status = RequestStatus.FINISHED_STOPPED;
      outputs.push({ ...makeOutput(request, [], null, true), pooledOutput: pooled });
      stopped.add(request);
      this.freeRequest(request);
    }
  }

  /**
   * Finishes requests from outside (an abort, a stop string found by the
   * detokenizer): frees their blocks and tells the runner in the next step.
   * Unknown or already finished ids are ignored. Returns the ids finished now.
   */
  finishRequests(requestIds: string | Iterable<string>, finishedStatus: RequestStatus): string[] {
    if (!isFinishedStatus(finishedStatus)) {
      throw new Error(`finishRequests needs a FINISHED_* status, got ${finishedStatus}.`);
    }
    const ids = typeof requestIds === 'string' ? [requestIds] : requestIds;
    const fromRunning = new Set<Request>();
    const fromWaiting = new Set<Request>();
    const done: string[] = [];
    for (const id of ids) {
      const request = this.requests.get(id);
      if (request === undefined || request.isFinished) continue;
      (request.status === RequestStatus.RUNNING ? fromRunning : fromWaiting).add(request);
      request.status = finishedStatus;
      this.freeRequest(request);
      done.push(id);
    }
    if (fromRunning.size > 0) this.running = this.running.filter((r) => !fromRunning.has(r));
    this.waiting.removeRequests(fromWaiting);
    return done;
  }

  private freeRequest(request: Request): void {
    if (request.structuredOutputRequest !== null) this.structuredOutputManager?.release(request);
    this.finishedReqIds.add(request.requestId);
    this.kvCacheManager.free(request);
    this.requests.delete(request.requestId);
  }

  getNumUnfinishedRequests(): number {
    return this.waiting.length + this.running.length;
  }

  hasUnfinishedRequests(): boolean {
    return this.getNumUnfinishedRequests() > 0;
  }

  hasFinishedRequests(): boolean {
    return this.finishedReqIds.size > 0;
  }

  /**
   * True while a step is still needed: unfinished requests, finished ids the
   * runner has not been told about, or refused requests not yet reported. The
   * engine core loops schedule → execute → updateFromOutput while this holds.
   */
  hasRequests(): boolean {
    return this.hasUnfinishedRequests() || this.hasFinishedRequests() || this.pendingOutputs.length > 0;
  }

  /**
   * Gauges now, counters (prefix-cache queries and hits in tokens, preemptions)
   * since the previous call — vLLM's per-step SchedulerStats; updateFromOutput
   * calls it once per step.
   */
  makeStats(): SchedulerStats {
    const prefix = this.kvCacheManager.makePrefixCacheStats();
    const numPreemptions = this.numPreemptionsSinceStats;
    this.numPreemptionsSinceStats = 0;
    const specDecodingStats = this.specDecode.takeStats();
    return {
      ...(specDecodingStats ? { specDecodingStats } : {}),
      numRunningReqs: this.running.length,
      numWaitingReqs: this.waiting.length,
      kvCacheUsage: this.kvCacheManager.usage,
      prefixCacheQueries: prefix.queries,
      prefixCacheHits: prefix.hits,
      numPreemptions,
    };
  }

  /** Drops every cached prefix block; false while requests hold blocks. */
  resetPrefixCache(): boolean {
    return this.kvCacheManager.resetPrefixCache();
  }
}
