// Per-step statistics computed on the main thread from EngineCoreOutputs (vLLM's
// IterationStats and FinishedRequestStats), handed to the stat loggers.
import type { EngineCoreEvent, FinishReason, SchedulerStats } from '../core/types.js';

export interface FinishedRequestStats {
  finishReason: FinishReason;
  /** Seconds from arrival to the finish. */
  e2eLatency: number;
  numPromptTokens: number;
  numGenerationTokens: number;
  /**
   * vLLM's phase intervals (s); null when the request never reached the phase's
   * ends (aborted while waiting, or before its first token). Queued: first QUEUED
   * to first SCHEDULED; prefill: first SCHEDULED to the first token; decode: first
   * to last token; inference: first SCHEDULED to the last token (preemptions inside).
   */
  queuedTime: number | null;
  prefillTime: number | null;
  decodeTime: number | null;
  inferenceTime: number | null;
  /** The request's max_tokens (after the server filled it in). */
  maxTokensParam: number | null;
}

export interface IterationStats {
  /** Seconds since the epoch when the step's outputs arrived. */
  timestamp: number;
  /** True for the stats of an engine step (false for aborts and failures recorded between steps). */
  engineStep: boolean;
  numPromptTokens: number;
  numGenerationTokens: number;
  /** Time to first token of each request that got its first token this step (s). */
  timeToFirstTokens: number[];
  /** Time since each request's previous tokens, for requests that already had some (s). */
  interTokenLatencies: number[];
  finishedRequests: FinishedRequestStats[];
  /** The n of each user request whose completions all finished this step. */
  nParams: number[];
}

export interface StatLogger {
  /** Called once per engine step (schedulerStats null when the core sent none). */
  record(schedulerStats: SchedulerStats | null, iterationStats: IterationStats): void;
}

export function newIterationStats(timestamp: number, engineStep = false): IterationStats {
  return {
    timestamp,
    engineStep,
    numPromptTokens: 0,
    numGenerationTokens: 0,
    timeToFirstTokens: [],
    interTokenLatencies: [],
    finishedRequests: [],
    nParams: [],
  };
}

/** What the n children of one user request share: how many are still unfinished. */
export class ParentTiming {
  private remaining: number;

  constructor(readonly n: number) {
    this.remaining = n;
  }

  /** One child finished; true for the last one. */
  childFinished(): boolean {
    return --this.remaining === 0;
  }
}

/** Timing of one engine request (one child of an n > 1 request), from arrival to finish. */
export class RequestTiming {
  firstTokenTime: number | null = null;
  lastTokenTime: number | null = null;
  numGenerationTokens = 0;
  queuedTime: number | null = null;
  scheduledTime: number | null = null;

  constructor(
    readonly arrivalTime: number,
    readonly numPromptTokens: number,
    readonly maxTokens: number | null = null,
    readonly parent: ParentTiming = new ParentTiming(1),
  ) {}

  /** The core's events for this request: the first QUEUED and the first SCHEDULED count. */
  onEvents(events: readonly EngineCoreEvent[] | undefined): void {
    if (!events) return;
    for (const e of events) {
      if (e.type === 'queued') this.queuedTime ??= e.timestamp;
      else if (e.type === 'scheduled') this.scheduledTime ??= e.timestamp;
    }
  }

  /** Records `n` new tokens that arrived at `now` into `stats`. */
  onTokens(n: number, now: number, stats: IterationStats): void {
    if (n === 0) return;
    if (this.firstTokenTime === null) {
      this.firstTokenTime = now;
      stats.numPromptTokens += this.numPromptTokens;
      stats.timeToFirstTokens.push(now - this.arrivalTime);
    } else if (this.lastTokenTime !== null) {
      stats.interTokenLatencies.push(now - this.lastTokenTime);
    }
    this.lastTokenTime = now;
    this.numGenerationTokens += n;
    stats.numGenerationTokens += n;
  }

  onFinished(reason: FinishReason, now: number, stats: IterationStats): void {
    const span = (from: number | null, to: number | null) => (from === null || to === null ? null : Math.max(0, to - from));
    stats.finishedRequests.push({
      finishReason: reason,
      e2eLatency: now - this.arrivalTime,
      numPromptTokens: this.numPromptTokens,
      numGenerationTokens: this.numGenerationTokens,
      queuedTime: span(this.queuedTime, this.scheduledTime),
      prefillTime: span(this.scheduledTime, this.firstTokenTime),
      decodeTime: span(this.firstTokenTime, this.lastTokenTime),
      inferenceTime: span(this.scheduledTime, this.lastTokenTime),
      maxTokensParam: this.maxTokens,
    });
    if (this.parent.childFinished()) stats.nParams.push(this.parent.n);
  }
}
