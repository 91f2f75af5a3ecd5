// Per-step statistics computed on the main thread from EngineCoreOutputs (vLLM's
// IterationStats and FinishedRequestStats), handed to the stat loggers.
import type { FinishReason, SchedulerStats } from '../core/types.js';

export interface FinishedRequestStats {
  finishReason: FinishReason;
  /** Seconds from arrival to the finish. */
  e2eLatency: number;
  numPromptTokens: number;
  numGenerationTokens: number;
}

export interface IterationStats {
  /** Seconds since the epoch when the step's outputs arrived. */
  timestamp: number;
  numPromptTokens: number;
  numGenerationTokens: number;
  /** Time to first token of each request that got its first token this step (s). */
  timeToFirstTokens: number[];
  /** Time since each request's previous tokens, for requests that already had some (s). */
  interTokenLatencies: number[];
  finishedRequests: FinishedRequestStats[];
}

export interface StatLogger {
  /** Called once per engine step (schedulerStats null when the core sent none). */
  record(schedulerStats: SchedulerStats | null, iterationStats: IterationStats): void;
}

export function newIterationStats(timestamp: number): IterationStats {
  return {
    timestamp,
    numPromptTokens: 0,
    numGenerationTokens: 0,
    timeToFirstTokens: [],
    interTokenLatencies: [],
    finishedRequests: [],
  };
}

/** Timing of one engine request (one child of an n > 1 request), from arrival to finish. */
export class RequestTiming {
  firstTokenTime: number | null = null;
  lastTokenTime: number | null = null;
  numGenerationTokens = 0;

  constructor(
    readonly arrivalTime: number,
    readonly numPromptTokens: number,
  ) {}

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
    stats.finishedRequests.push({
      finishReason: reason,
      e2eLatency: now - this.arrivalTime,
      numPromptTokens: this.numPromptTokens,
      numGenerationTokens: this.numGenerationTokens,
    });
  }
}
