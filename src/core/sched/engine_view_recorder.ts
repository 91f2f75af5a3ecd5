// The engine view's recorder (`--enable-engine-view`): built by the EngineCore only
// when the view is on, it watches each step's SchedulerOutput and outputs, and at
// most `maxRecordsPerSecond` times a second turns one step into an
// EngineViewRecord (core/engine_view.ts) that rides up in SchedulerStats.engineView.
// Between two records it only counts (steps, tokens, admitted / preempted /
// finished ids, prefix-cache lookups), so a fast engine pays O(1) per step and
// O(numBlocks) a few times a second.
import type { EngineCoreOutputs, SchedulerStats } from '../types.js';
import type { EngineViewRecord, IdList, StepRequestRecord, WaitingRequestRecord } from '../engine_view.js';
import { encodeKvGrid, MAX_KV_GRID_CELLS } from '../kv_cache/kv_grid.js';
import { type Request, RequestStatus } from '../request.js';
import type { SchedulerOutput } from './output.js';
import type { Scheduler } from './scheduler.js';

/** Records per second at most, by default: what a person can follow, and what the page draws. */
export const ENGINE_VIEW_MAX_RECORDS_PER_S = 10;
/** Ids listed at most per list (waiting queue, admitted, preempted, finished); counts stay exact. */
const MAX_LISTED = 32;

export interface EngineViewRecorderOptions {
  /** At most this many records a second (Infinity: every step, for tests). */
  maxRecordsPerSecond?: number;
  maxCells?: number;
  /** Milliseconds, monotonic (default performance.now). */
  now?: () => number;
}

const emptyIds = (): IdList => ({ ids: [], count: 0 });
function pushId(list: IdList, id: string): void {
  if (list.ids.length < MAX_LISTED) list.ids.push(id);
  list.count++;
}

function waitingStatus(r: Request): WaitingRequestRecord['status'] {
  if (r.status === RequestStatus.PREEMPTED) return 'preempted';
  return r.status === RequestStatus.WAITING_FOR_FSM ? 'waiting_for_fsm' : 'waiting';
}

export class EngineViewRecorder {
  private readonly intervalMs: number;
  private readonly maxCells: number;
  private readonly now: () => number;
  private step = 0;
  private lastRecordStep = 0;
  private lastRecordMs = -Infinity;
  /** Built at schedule time, sent with the same step's outputs. */
  private pending: EngineViewRecord | null = null;
  private admitted = emptyIds();
  private preempted = emptyIds();
  private finished = emptyIds();
  private queries = 0;
  private hits = 0;
  private tokens = 0;

  constructor(
    private readonly scheduler: Scheduler,
    opts: EngineViewRecorderOptions = {},
  ) {
    this.intervalMs = 1000 / (opts.maxRecordsPerSecond ?? ENGINE_VIEW_MAX_RECORDS_PER_S);
    this.maxCells = opts.maxCells ?? MAX_KV_GRID_CELLS;
    this.now = opts.now ?? (() => performance.now());
  }

  /** After schedule(), before the model runs: counts the step, and records it when one is due. */
  onSchedule(so: SchedulerOutput): void {
    this.step++;
    this.tokens += so.totalNumScheduledTokens;
    for (const r of so.scheduledNewReqs) pushId(this.admitted, r.reqId);
    for (const id of so.preemptedReqIds) pushId(this.preempted, id);
    // A step that schedules nothing (it only tells the runner about finished requests) is counted, not shown.
    if (so.totalNumScheduledTokens === 0) return;
    const now = this.now();
    if (now - this.lastRecordMs < this.intervalMs) return;
    this.lastRecordMs = now;
    this.pending = this.build(so);
  }

  /** After updateFromOutput: counts the finished requests and prefix-cache lookups; attaches a due record to the stats. */
  onOutputs(outputs: EngineCoreOutputs): void {
    for (const o of outputs.outputs) if (o.finishReason !== null) pushId(this.finished, o.requestId);
    const stats = outputs.schedulerStats;
    if (stats === null) return;
    this.queries += stats.prefixCacheQueries;
    this.hits += stats.prefixCacheHits;
    if (this.pending === null) return;
    stats.engineView = this.finish(this.pending);
    this.pending = null;
  }

  /** The stats the engine sends when it runs out of work: always with a record (the batch is empty, the cache keeps its cached blocks). */
  onIdle(stats: SchedulerStats): void {
    this.queries += stats.prefixCacheQueries;
    this.hits += stats.prefixCacheHits;
    this.lastRecordMs = this.now();
    stats.engineView = this.finish(this.build(null));
  }

  /** Fills in what was counted since the previous record, and starts counting afresh. */
  private finish(r: EngineViewRecord): EngineViewRecord {
    Object.assign(r, {
      numSteps: r.step - this.lastRecordStep,
      admitted: this.admitted,
      preempted: this.preempted,
      finished: this.finished,
      prefixCacheQueries: this.queries,
      prefixCacheHits: this.hits,
      numScheduledTokensSinceLast: this.tokens,
    });
    this.lastRecordStep = r.step;
    this.admitted = emptyIds();
    this.preempted = emptyIds();
    this.finished = emptyIds();
    this.queries = this.hits = this.tokens = 0;
    return r;
  }

  /** This step's record (so null: the engine is idle) without the since-last counts. */
  private build(so: SchedulerOutput | null): EngineViewRecord {
    const sched = this.scheduler;
    const kvm = sched.kvCacheManager;
    const running = this.runningRecords(so);
    const waiting: WaitingRequestRecord[] = [];
    for (const r of sched.waiting) {
      if (waiting.length >= MAX_LISTED) break;
      waiting.push({ reqId: r.requestId, status: waitingStatus(r), numTokens: r.numTokens, numPreemptions: r.numPreemptions });
    }
    const holders = sched.running.map((r) => ({
      reqId: r.requestId,
      blocks: kvm.getBlocks(r.requestId),
      numHitBlocks: Math.max(0, Math.floor(r.numCachedTokens / kvm.blockSize)),
    }));
    return {
      step: this.step,
      idle: so === null,
      numSteps: 0,
      timestamp: Date.now() / 1000,
      tokenBudget: sched.maxNumScheduledTokens,
      maxNumSeqs: sched.maxNumRunningReqs,
      numScheduledTokens: so?.totalNumScheduledTokens ?? 0,
      running,
      waiting,
      numWaitingReqs: sched.waiting.length,
      admitted: emptyIds(),
      preempted: emptyIds(),
      finished: emptyIds(),
      prefixCacheQueries: 0,
      prefixCacheHits: 0,
      numScheduledTokensSinceLast: 0,
      kv: encodeKvGrid(kvm.blockPool, kvm.blockSize, holders, this.maxCells),
    };
  }

  /** Every running request, the scheduled ones first (in the SchedulerOutput's order), then those the budget left out. */
  private runningRecords(so: SchedulerOutput | null): StepRequestRecord[] {
    const computedBefore = new Map<string, number>();
    const isNew = new Set<string>();
    if (so !== null) {
      so.scheduledCachedReqs.reqIds.forEach((id, i) => computedBefore.set(id, so.scheduledCachedReqs.numComputedTokens[i]));
      for (const r of so.scheduledNewReqs) {
        computedBefore.set(r.reqId, r.numComputedTokens);
        isNew.add(r.reqId);
      }
    }
    const order = [...computedBefore.keys()];
    for (const r of this.scheduler.running) if (!computedBefore.has(r.requestId)) order.push(r.requestId);
    const out: StepRequestRecord[] = [];
    for (const id of order) {
      const r = this.scheduler.requests.get(id);
      if (r === undefined) continue;
      const computed = computedBefore.get(id) ?? r.numComputedTokens;
      out.push({
        reqId: id,
        numScheduledTokens: so?.numScheduledTokens[id] ?? 0,
        numComputedTokens: computed,
        numTokens: r.numTokens,
        numPromptTokens: r.numPromptTokens,
        numOutputTokens: r.numOutputTokens,
        numCachedTokens: Math.max(0, r.numCachedTokens),
        // The newest sampled token is the only one left: a decode. Anything more is a prefill chunk.
        phase: r.numOutputTokens > 0 && r.numTokens - computed <= 1 ? 'decode' : 'prefill',
        numSpecTokens: so?.scheduledSpecDecodeTokens?.[id]?.length ?? 0,
        isNew: isNew.has(id),
        numBlocks: this.scheduler.kvCacheManager.getBlocks(id).length,
        numPreemptions: r.numPreemptions,
      });
    }
    return out;
  }
}
