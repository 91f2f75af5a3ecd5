// vLLM's LoggingStatLogger: one line every `intervalS` seconds while the engine is
// busy — prompt and generation throughput, running / waiting requests, KV cache
// usage and prefix cache hit rate; with speculative decoding, vLLM's acceptance line after it.
import type { SchedulerStats } from '../core/types.js';
import type { IterationStats, StatLogger } from './stats.js';
import { SpecDecodingLogging } from './spec_decode.js';

export class LoggingStatLogger implements StatLogger {
  private promptTokens = 0;
  private generationTokens = 0;
  private queries = 0;
  private hits = 0;
  private last: SchedulerStats | null = null;
  private lastLogTime = Date.now();
  private loggedIdle = true;
  private readonly specDecoding = new SpecDecodingLogging();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly log: (line: string) => void,
    intervalS = 10,
  ) {
    this.timer = setInterval(() => this.flush(), intervalS * 1000);
    this.timer.unref();
  }

  record(s: SchedulerStats | null, it: IterationStats): void {
    this.promptTokens += it.numPromptTokens;
    this.generationTokens += it.numGenerationTokens;
    if (s !== null) {
      this.last = s;
      this.queries += s.prefixCacheQueries;
      this.hits += s.prefixCacheHits;
      if (s.specDecodingStats) this.specDecoding.observe(s.specDecodingStats);
    }
  }

  private flush(): void {
    const now = Date.now();
    const dt = (now - this.lastLogTime) / 1000;
    this.lastLogTime = now;
    const s = this.last;
    const idle = this.promptTokens === 0 && this.generationTokens === 0 && (s === null || s.numRunningReqs + s.numWaitingReqs === 0);
    if (idle && this.loggedIdle) return;
    this.loggedIdle = idle;
    const hitRate = this.queries > 0 ? (100 * this.hits) / this.queries : 0;
    this.log(
      `Avg prompt throughput: ${(this.promptTokens / dt).toFixed(1)} tokens/s, ` +
        `Avg generation throughput: ${(this.generationTokens / dt).toFixed(1)} tokens/s, ` +
        `Running: ${s?.numRunningReqs ?? 0} reqs, Waiting: ${s?.numWaitingReqs ?? 0} reqs, ` +
        `KV cache usage: ${(100 * (s?.kvCacheUsage ?? 0)).toFixed(1)}%, Prefix cache hit rate: ${hitRate.toFixed(1)}%`,
    );
    const spec = this.specDecoding.takeLine();
    if (spec !== null) this.log(spec);
    this.promptTokens = 0;
    this.generationTokens = 0;
    this.queries = 0;
    this.hits = 0;
  }

  close(): void {
    clearInterval(this.timer);
  }
}
