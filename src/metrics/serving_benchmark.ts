// The measurements of `vllm-ts bench serve`, with vLLM's benchmark_serving
// definitions: TTFT, TPOT (excluding the first token), ITL and E2EL per request,
// summarized as mean / median / std / percentiles in milliseconds.

/** What one streamed request measured (seconds). */
export interface RequestFuncOutput {
  success: boolean;
  error: string;
  promptLen: number;
  outputTokens: number;
  ttft: number;
  /** Gaps between consecutive streamed chunks after the first. */
  itl: number[];
  latency: number;
  generatedText: string;
}

export interface Summary {
  mean: number;
  median: number;
  std: number;
  percentiles: Record<string, number>;
}

/** numpy.percentile's default (linear interpolation) over sorted values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const idx = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(idx);
  const hi = Math.ceil(idx);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (idx - lo);
}

/** Mean, median, std and percentiles of `values` (seconds) in milliseconds; zeros when empty (as vLLM). */
export function summarize(values: readonly number[], percentiles: readonly number[]): Summary {
  const ms = values.map((v) => v * 1000).sort((a, b) => a - b);
  const mean = ms.length ? ms.reduce((a, b) => a + b, 0) / ms.length : 0;
  const variance = ms.length ? ms.reduce((a, b) => a + (b - mean) ** 2, 0) / ms.length : 0;
  return {
    mean,
    median: percentile(ms, 50),
    std: Math.sqrt(variance),
    percentiles: Object.fromEntries(percentiles.map((p) => [String(p), percentile(ms, p)])),
  };
}

export interface BenchmarkMetrics {
  completed: number;
  failed: number;
  totalInput: number;
  totalOutput: number;
  durationS: number;
  requestThroughput: number;
  outputThroughput: number;
  totalTokenThroughput: number;
  ttft: Summary;
  tpot: Summary;
  itl: Summary;
  e2el: Summary;
}

/** vLLM's calculate_metrics over the successful requests. */
export function calculateMetrics(outputs: readonly RequestFuncOutput[], durationS: number, percentiles: readonly number[]): BenchmarkMetrics {
  const ok = outputs.filter((o) => o.success);
  const tpots: number[] = [];
  for (const o of ok) {
    if (o.outputTokens > 1) tpots.push((o.latency - o.ttft) / (o.outputTokens - 1));
  }
  const totalInput = ok.reduce((a, o) => a + o.promptLen, 0);
  const totalOutput = ok.reduce((a, o) => a + o.outputTokens, 0);
  return {
    completed: ok.length,
    failed: outputs.length - ok.length,
    totalInput,
    totalOutput,
    durationS,
    requestThroughput: ok.length / durationS,
    outputThroughput: totalOutput / durationS,
    totalTokenThroughput: (totalInput + totalOutput) / durationS,
    ttft: summarize(ok.map((o) => o.ttft), percentiles),
    tpot: summarize(tpots, percentiles),
    itl: summarize(ok.flatMap((o) => o.itl), percentiles),
    e2el: summarize(ok.map((o) => o.latency), percentiles),
  };
}

/** Poisson arrivals: exponential gaps with mean 1 / rate (Infinity: all at once). */
export function poissonIntervals(n: number, rate: number, random: () => number): number[] {
  if (!Number.isFinite(rate)) return new Array<number>(n).fill(0);
  return Array.from({ length: n }, () => -Math.log(1 - random()) / rate);
}

/** A small seeded PRNG (mulberry32) so that datasets and arrivals repeat run to run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
