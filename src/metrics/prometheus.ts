// Prometheus metrics with vLLM's names, help texts and buckets
// (vllm/v1/metrics/loggers.py), in their own prom-client Registry, labelled with
// model_name and engine ("0": one engine core). Fed once per engine step.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { FinishReason, SchedulerStats } from '../core/types.js';
import type { IterationStats, StatLogger } from './stats.js';
import { SpecDecodingProm } from './spec_decode.js';

const TTFT_BUCKETS = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0,
  640.0, 2560.0,
];
const ITL_BUCKETS = [
  0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
];
/** vLLM's request_latency_buckets: e2e latency and the queue / prefill / decode / inference phases. */
const REQUEST_LATENCY_BUCKETS = [
  0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0,
  7680.0,
];
const ITERATION_TOKEN_BUCKETS = [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384];
const N_BUCKETS = [1, 2, 5, 10, 20];
const FINISH_REASONS: FinishReason[] = ['stop', 'length', 'abort', 'error'];
const WAITING_REASONS = ['capacity', 'deferred'] as const;

type Labels = 'model_name' | 'engine';

export class PrometheusStatLogger implements StatLogger {
  readonly registry = new Registry();
  private readonly labels: { model_name: string; engine: string };
  private readonly numRequestsRunning: Gauge<Labels>;
  private readonly numRequestsWaiting: Gauge<Labels>;
  private readonly numRequestsWaitingByReason: Gauge<Labels | 'reason'>;
  private readonly kvCacheUsage: Gauge<Labels>;
  private readonly promptTokens: Counter<Labels>;
  private readonly generationTokens: Counter<Labels>;
  private readonly requestSuccess: Counter<Labels | 'finished_reason'>;
  private readonly numPreemptions: Counter<Labels>;
  private readonly prefixCacheQueries: Counter<Labels>;
  private readonly prefixCacheHits: Counter<Labels>;
  private readonly iterationTokens: Histogram<Labels>;
  private readonly ttft: Histogram<Labels>;
  private readonly itl: Histogram<Labels>;
  private readonly e2e: Histogram<Labels>;
  private readonly queueTime: Histogram<Labels>;
  private readonly inferenceTime: Histogram<Labels>;
  private readonly prefillTime: Histogram<Labels>;
  private readonly decodeTime: Histogram<Labels>;
  private readonly promptTokensPerRequest: Histogram<Labels>;
  private readonly generationTokensPerRequest: Histogram<Labels>;
  private readonly paramsN: Histogram<Labels>;
  private readonly paramsMaxTokens: Histogram<Labels>;
  /** Speculative decoding's counters (./spec_decode.ts); null when it is off. */
  private readonly specDecoding: SpecDecodingProm | null;

  /** numSpeculativeTokens: K of the speculative config (0: off, no spec_decode counters). */
  constructor(modelName: string, maxModelLen: number, numSpeculativeTokens = 0) {
    this.labels = { model_name: modelName, engine: '0' };
    const registers = [this.registry];
    const labelNames = ['model_name', 'engine'] as const;
    const gauge = (name: string, help: string) => new Gauge({ name, help, labelNames, registers });
    const counter = (name: string, help: string) => new Counter({ name, help, labelNames, registers });
    const histogram = (name: string, help: string, buckets: number[]) =>
      new Histogram({ name, help, labelNames, buckets, registers });

    this.numRequestsRunning = gauge('vllm:num_requests_running', 'Number of requests in model execution batches.');
    this.numRequestsWaiting = gauge('vllm:num_requests_waiting', 'Number of requests waiting to be processed.');
    this.numRequestsWaitingByReason = new Gauge({
      name: 'vllm:num_requests_waiting_by_reason',
      help:
        "Number of waiting requests by reason. Reason labels: 'capacity' = waiting for scheduling capacity; " +
        "'deferred' = deferred by transient constraints (LoRA budget, KV transfer, blocked status). " +
        'Sum of all reasons equals vllm:num_requests_waiting.',
      labelNames: [...labelNames, 'reason'],
      registers,
    });
    this.kvCacheUsage = gauge('vllm:kv_cache_usage_perc', 'KV-cache usage. 1 means 100 percent usage.');
    this.promptTokens = counter('vllm:prompt_tokens_total', 'Number of prefill tokens processed.');
    this.generationTokens = counter('vllm:generation_tokens_total', 'Number of generation tokens processed.');
    this.requestSuccess = new Counter({
      name: 'vllm:request_success_total',
      help: 'Count of successfully processed requests.',
      labelNames: [...labelNames, 'finished_reason'],
      registers,
    });
    this.numPreemptions = counter('vllm:num_preemptions_total', 'Cumulative number of preemption from the engine.');
    this.prefixCacheQueries = counter(
      'vllm:prefix_cache_queries_total',
      'Prefix cache queries, in terms of number of queried tokens.',
    );
    this.prefixCacheHits = counter('vllm:prefix_cache_hits_total', 'Prefix cache hits, in terms of number of cached tokens.');
    this.iterationTokens = histogram('vllm:iteration_tokens_total', 'Histogram of number of tokens per engine_step.', ITERATION_TOKEN_BUCKETS);
    this.ttft = histogram('vllm:time_to_first_token_seconds', 'Histogram of time to first token in seconds.', TTFT_BUCKETS);
    this.itl = histogram('vllm:inter_token_latency_seconds', 'Histogram of inter-token latency in seconds.', ITL_BUCKETS);
    this.e2e = histogram('vllm:e2e_request_latency_seconds', 'Histogram of e2e request latency in seconds.', REQUEST_LATENCY_BUCKETS);
    this.queueTime = histogram('vllm:request_queue_time_seconds', 'Histogram of time spent in WAITING phase for request.', REQUEST_LATENCY_BUCKETS);
    this.inferenceTime = histogram(
      'vllm:request_inference_time_seconds',
      'Histogram of time spent in RUNNING phase for request.',
      REQUEST_LATENCY_BUCKETS,
    );
    this.prefillTime = histogram('vllm:request_prefill_time_seconds', 'Histogram of time spent in PREFILL phase for request.', REQUEST_LATENCY_BUCKETS);
    this.decodeTime = histogram('vllm:request_decode_time_seconds', 'Histogram of time spent in DECODE phase for request.', REQUEST_LATENCY_BUCKETS);
    const tokenBuckets = lengthBuckets(maxModelLen);
    this.promptTokensPerRequest = histogram('vllm:request_prompt_tokens', 'Number of prefill tokens processed.', tokenBuckets);
    this.generationTokensPerRequest = histogram('vllm:request_generation_tokens', 'Number of generation tokens processed.', tokenBuckets);
    this.paramsN = histogram('vllm:request_params_n', 'Histogram of the n request parameter.', N_BUCKETS);
    this.paramsMaxTokens = histogram('vllm:request_params_max_tokens', 'Histogram of the max_tokens request parameter.', tokenBuckets);

    // Present from the start (at 0), as vLLM's are.
    for (const m of [this.numRequestsRunning, this.numRequestsWaiting, this.kvCacheUsage]) m.set(this.labels, 0);
    for (const reason of WAITING_REASONS) this.numRequestsWaitingByReason.set({ ...this.labels, reason }, 0);
    for (const m of [this.promptTokens, this.generationTokens, this.numPreemptions, this.prefixCacheQueries, this.prefixCacheHits]) {
      m.inc(this.labels, 0);
    }
    for (const reason of FINISH_REASONS) this.requestSuccess.inc({ ...this.labels, finished_reason: reason }, 0);
    this.specDecoding = numSpeculativeTokens > 0 ? new SpecDecodingProm(this.registry, this.labels, numSpeculativeTokens) : null;
  }

  /**
   * vllm:cache_config_info: an info gauge (always 1) whose labels are the cache
   * configuration (vLLM's log_engine_initialized), plus engine.
   */
  logCacheConfigInfo(info: Record<string, string>): void {
    const labels = { ...info, engine: this.labels.engine };
    new Gauge({
      name: 'vllm:cache_config_info',
      help: 'Information of the LLMEngine CacheConfig',
      labelNames: Object.keys(labels),
      registers: [this.registry],
    }).set(labels, 1);
  }

  record(s: SchedulerStats | null, it: IterationStats): void {
    const l = this.labels;
    if (s !== null) {
      this.numRequestsRunning.set(l, s.numRunningReqs);
      this.numRequestsWaiting.set(l, s.numWaitingReqs);
      const deferred = s.numDeferredWaitingReqs ?? 0;
      this.numRequestsWaitingByReason.set({ ...l, reason: 'capacity' }, s.numWaitingReqs - deferred);
      this.numRequestsWaitingByReason.set({ ...l, reason: 'deferred' }, deferred);
      this.kvCacheUsage.set(l, s.kvCacheUsage);
      if (s.numPreemptions > 0) this.numPreemptions.inc(l, s.numPreemptions);
      if (s.prefixCacheQueries > 0) this.prefixCacheQueries.inc(l, s.prefixCacheQueries);
      if (s.prefixCacheHits > 0) this.prefixCacheHits.inc(l, s.prefixCacheHits);
      if (s.specDecodingStats) this.specDecoding?.observe(s.specDecodingStats);
    }
    if (it.numPromptTokens > 0) this.promptTokens.inc(l, it.numPromptTokens);
    if (it.numGenerationTokens > 0) this.generationTokens.inc(l, it.numGenerationTokens);
    // NOTE: one sample per engine step, as vLLM's (aborts recorded between steps are not steps).
    if (it.engineStep) this.iterationTokens.observe(l, it.numPromptTokens + it.numGenerationTokens);
    for (const v of it.timeToFirstTokens) this.ttft.observe(l, v);
    for (const v of it.interTokenLatencies) this.itl.observe(l, v);
    for (const n of it.nParams) this.paramsN.observe(l, n);
    for (const f of it.finishedRequests) {
      this.requestSuccess.inc({ ...l, finished_reason: f.finishReason });
      this.e2e.observe(l, f.e2eLatency);
      if (f.queuedTime !== null) this.queueTime.observe(l, f.queuedTime);
      if (f.prefillTime !== null) this.prefillTime.observe(l, f.prefillTime);
      if (f.decodeTime !== null) this.decodeTime.observe(l, f.decodeTime);
      if (f.inferenceTime !== null) this.inferenceTime.observe(l, f.inferenceTime);
      this.promptTokensPerRequest.observe(l, f.numPromptTokens);
      this.generationTokensPerRequest.observe(l, f.numGenerationTokens);
      if (f.maxTokensParam) this.paramsMaxTokens.observe(l, f.maxTokensParam);
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
