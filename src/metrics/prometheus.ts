// Prometheus metrics with vLLM's names (vllm/v1/metrics/loggers.py), in their own
// prom-client Registry, labelled with model_name. Fed once per engine step.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { FinishReason, SchedulerStats } from '../core/types.js';
import type { IterationStats, StatLogger } from './stats.js';

const TTFT_BUCKETS = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0,
  640.0, 2560.0,
];
const ITL_BUCKETS = [
  0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
];
const E2E_BUCKETS = [
  0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0,
  7680.0,
];
const FINISH_REASONS: FinishReason[] = ['stop', 'length', 'abort', 'error'];

export class PrometheusStatLogger implements StatLogger {
  readonly registry = new Registry();
  private readonly labels: { model_name: string };
  private readonly numRequestsRunning: Gauge<'model_name'>;
  private readonly numRequestsWaiting: Gauge<'model_name'>;
  private readonly kvCacheUsage: Gauge<'model_name'>;
  private readonly promptTokens: Counter<'model_name'>;
  private readonly generationTokens: Counter<'model_name'>;
  private readonly requestSuccess: Counter<'model_name' | 'finished_reason'>;
  private readonly numPreemptions: Counter<'model_name'>;
  private readonly prefixCacheQueries: Counter<'model_name'>;
  private readonly prefixCacheHits: Counter<'model_name'>;
  private readonly ttft: Histogram<'model_name'>;
  private readonly itl: Histogram<'model_name'>;
  private readonly e2e: Histogram<'model_name'>;
  private readonly promptTokensPerRequest: Histogram<'model_name'>;
  private readonly generationTokensPerRequest: Histogram<'model_name'>;

  constructor(modelName: string, maxModelLen: number) {
    this.labels = { model_name: modelName };
    const registers = [this.registry];
    const labelNames = ['model_name'] as const;
    const gauge = (name: string, help: string) => new Gauge({ name, help, labelNames, registers });
    const counter = (name: string, help: string) => new Counter({ name, help, labelNames, registers });
    const histogram = (name: string, help: string, buckets: number[]) =>
      new Histogram({ name, help, labelNames, buckets, registers });

    this.numRequestsRunning = gauge('vllm:num_requests_running', 'Number of requests in model execution batches.');
    this.numRequestsWaiting = gauge('vllm:num_requests_waiting', 'Number of requests waiting to be processed.');
    this.kvCacheUsage = gauge('vllm:kv_cache_usage_perc', 'KV-cache usage. 1 means 100 percent usage.');
    this.promptTokens = counter('vllm:prompt_tokens_total', 'Number of prefill tokens processed.');
    this.generationTokens = counter('vllm:generation_tokens_total', 'Number of generation tokens processed.');
    this.requestSuccess = new Counter({
      name: 'vllm:request_success_total',
      help: 'Count of successfully processed requests.',
      labelNames: ['model_name', 'finished_reason'],
      registers,
    });
    this.numPreemptions = counter('vllm:num_preemptions_total', 'Cumulative number of preemption from the engine.');
    this.prefixCacheQueries = counter(
      'vllm:prefix_cache_queries_total',
      'Prefix cache queries, in terms of number of queried tokens.',
    );
    this.prefixCacheHits = counter('vllm:prefix_cache_hits_total', 'Prefix cache hits, in terms of number of cached tokens.');
    this.ttft = histogram('vllm:time_to_first_token_seconds', 'Histogram of time to first token in seconds.', TTFT_BUCKETS);
    this.itl = histogram('vllm:inter_token_latency_seconds', 'Histogram of inter-token latency in seconds.', ITL_BUCKETS);
    this.e2e = histogram('vllm:e2e_request_latency_seconds', 'Histogram of e2e request latency in seconds.', E2E_BUCKETS);
    const tokenBuckets = lengthBuckets(maxModelLen);
    this.promptTokensPerRequest = histogram(
      'vllm:request_prompt_tokens',
      'Number of prefill tokens processed.',
      tokenBuckets,
    );
    this.generationTokensPerRequest = histogram(
      'vllm:request_generation_tokens',
      'Number of generation tokens processed.',
      tokenBuckets,
    );

    // Present from the start (at 0), as vLLM's are.
    for (const m of [this.numRequestsRunning, this.numRequestsWaiting, this.kvCacheUsage]) m.set(this.labels, 0);
    for (const m of [this.promptTokens, this.generationTokens, this.numPreemptions, this.prefixCacheQueries, this.prefixCacheHits]) {
      m.inc(this.labels, 0);
    }
    for (const reason of FINISH_REASONS) this.requestSuccess.inc({ ...this.labels, finished_reason: reason }, 0);
  }

  record(s: SchedulerStats | null, it: IterationStats): void {
    const l = this.labels;
    if (s !== null) {
      this.numRequestsRunning.set(l, s.numRunningReqs);
      this.numRequestsWaiting.set(l, s.numWaitingReqs);
      this.kvCacheUsage.set(l, s.kvCacheUsage);
      if (s.numPreemptions > 0) this.numPreemptions.inc(l, s.numPreemptions);
      if (s.prefixCacheQueries > 0) this.prefixCacheQueries.inc(l, s.prefixCacheQueries);
      if (s.prefixCacheHits > 0) this.prefixCacheHits.inc(l, s.prefixCacheHits);
    }
    if (it.numPromptTokens > 0) this.promptTokens.inc(l, it.numPromptTokens);
    if (it.numGenerationTokens > 0) this.generationTokens.inc(l, it.numGenerationTokens);
    for (const v of it.timeToFirstTokens) this.ttft.observe(l, v);
    for (const v of it.interTokenLatencies) this.itl.observe(l, v);
    for (const f of it.finishedRequests) {
      this.requestSuccess.inc({ ...l, finished_reason: f.finishReason });
      this.e2e.observe(l, f.e2eLatency);
      this.promptTokensPerRequest.observe(l, f.numPromptTokens);
      this.generationTokensPerRequest.observe(l, f.numGenerationTokens);
    }
  }

  /** The exposition text for GET /metrics. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** vLLM's build_1_2_5_buckets: 1, 2, 5, 10, 20, 50, ... up to maxValue. */
export function lengthBuckets(maxValue: number): number[] {
  const out: number[] = [];
  for (let exp = 1; ; exp *= 10) {
    for (const m of [1, 2, 5]) {
      const v = m * exp;
      if (v > maxValue) return out;
      out.push(v);
    }
  }
}
