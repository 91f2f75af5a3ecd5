// `vllm-ts bench serve` (vLLM's benchmark_serving): a random dataset sent to a
// running server's /v1/completions, streamed, at a Poisson request rate and / or a
// concurrency cap; TTFT, TPOT, ITL, E2EL and throughput, plus /health latency
// probed throughout the run.
import { existsSync, writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { Command } from 'commander';
import { REPO_ID_RE } from '../../hub/constants.js';
import { resolveModelPath } from '../../hub/index.js';
import { Tokenizer } from '../../tokenizer/tokenizer.js';
import {
  type BenchmarkMetrics,
  calculateMetrics,
  percentile,
  poissonIntervals,
  type RequestFuncOutput,
  seededRandom,
  type Summary,
} from '../../metrics/serving_benchmark.js';
import { parseIntFlag, parseNumFlag } from './engine_flags.js';

export interface BenchServeOptions {
  baseUrl: string;
  endpoint: string;
  model: string;
  tokenizer: Tokenizer;
  numPrompts: number;
  randomInputLen: number;
  randomOutputLen: number;
  requestRate: number;
  maxConcurrency: number | null;
  ignoreEos: boolean;
  seed: number;
  percentiles: number[];
  apiKey?: string;
  /** Interval of the /health probe (ms). */
  healthIntervalMs: number;
  log?: (line: string) => void;
}

interface SampleRequest {
  prompt: string;
  promptLen: number;
  outputLen: number;
}

/** vLLM's random dataset: random token ids, decoded, re-encoded to the target length. */
export function randomDataset(tokenizer: Tokenizer, num: number, inputLen: number, outputLen: number, seed: number): SampleRequest[] {
  const random = seededRandom(seed);
  const special = tokenizer.allSpecialIds;
  const vocab = tokenizer.vocabSize;
  const pick = () => {
    for (;;) {
      const id = Math.floor(random() * vocab);
      if (!special.has(id)) return id;
    }
  };
  return Array.from({ length: num }, () => {
    let ids = Array.from({ length: inputLen }, pick);
    let prompt = tokenizer.decode(ids);
    // NOTE: decode -> encode is not the identity; trim or pad until it is inputLen tokens.
    for (let tries = 0; tries < 10; tries++) {
      const re = tokenizer.encode(prompt, { addSpecialTokens: false });
      if (re.length === inputLen) break;
      ids = re.length > inputLen ? re.slice(0, inputLen) : [...re, ...Array.from({ length: inputLen - re.length }, pick)];
      prompt = tokenizer.decode(ids);
    }
    const promptLen = tokenizer.encode(prompt).length;
    return { prompt, promptLen, outputLen };
  });
}

/** One streamed completion, timed as vLLM's async_request_openai_completions. */
export async function requestCompletion(o: BenchServeOptions, s: SampleRequest): Promise<RequestFuncOutput> {
  const out: RequestFuncOutput = { success: false, error: '', promptLen: s.promptLen, outputTokens: 0, ttft: 0, itl: [], latency: 0, generatedText: '' };
  const body = {
    model: o.model,
    prompt: s.prompt,
    max_tokens: s.outputLen,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
    ignore_eos: o.ignoreEos,
  };
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (o.apiKey) headers.authorization = `Bearer ${o.apiKey}`;
  const t0 = performance.now();
  let last = t0;
  try {
    const res = await fetch(o.baseUrl + o.endpoint, { method: 'POST', headers, body: JSON.stringify(body) });
    if (!res.ok || !res.body) {
      out.error = `HTTP ${res.status}: ${await res.text()}`;
      return out;
    }
    const decoder = new TextDecoder();
    let buf = '';
    let chunks = 0;
    for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(part, { stream: true });
      let sep: number;
      while ((sep = buf.indexOf('\n\n')) >= 0) {
        const event = buf.slice(0, sep);
        buf = buf.slice(sep + 2);
        if (!event.startsWith('data: ')) continue;
        const data = event.slice(6).trim();
        if (data === '[DONE]') continue;
        const msg = JSON.parse(data) as { choices?: { text?: string }[]; usage?: { completion_tokens: number }; error?: { message: string } };
        if (msg.error) throw new Error(msg.error.message);
        const now = performance.now();
        // NOTE: as vLLM's client, every chunk with a choice is a token's arrival, its
        // text empty or not (a special token, or an id the tokenizer does not know).
        const choice = msg.choices?.[0];
        if (choice) {
          if (out.ttft === 0) out.ttft = (now - t0) / 1000;
          else out.itl.push((now - last) / 1000);
          last = now;
          chunks++;
          out.generatedText += choice.text ?? '';
        }
        if (msg.usage) out.outputTokens = msg.usage.completion_tokens;
      }
    }
    out.latency = (last - t0) / 1000;
    if (out.outputTokens === 0) out.outputTokens = chunks;
    out.success = true;
  } catch (e) {
    out.error = (e as Error).message;
  }
  return out;
}

// NOTE: the probe runs in its own thread: on the load generator's event loop, the
// time spent parsing hundreds of streams would count as /health latency.
const PROBE_CODE = `
const { parentPort, workerData } = require('node:worker_threads');
const latencies = [];
let running = true;
parentPort.on('message', () => { running = false; });
(async () => {
  while (running) {
    const t0 = performance.now();
    try {
      const res = await fetch(workerData.url);
      await res.arrayBuffer();
      latencies.push(res.ok ? (performance.now() - t0) / 1000 : Infinity);
    } catch {
      latencies.push(Infinity);
    }
    await new Promise((r) => setTimeout(r, workerData.intervalMs));
  }
  parentPort.postMessage(latencies);
})();
`;

/** GET /health every `intervalMs` from a worker thread until stopped; returns the latencies (s; Infinity for a failure). */
function probeHealth(baseUrl: string, intervalMs: number): { stop(): Promise<number[]> } {
  const worker = new Worker(PROBE_CODE, { eval: true, workerData: { url: baseUrl + '/health', intervalMs } });
  const result = new Promise<number[]>((resolve, reject) => {
    worker.once('message', (m: number[]) => resolve(m));
    worker.once('error', reject);
  });
  return {
    async stop() {
      worker.postMessage('stop');
      const latencies = await result;
      await worker.terminate();
      return latencies;
    },
  };
}

export interface BenchServeResult {
  metrics: BenchmarkMetrics;
  health: { count: number; p50Ms: number; p99Ms: number; maxMs: number };
  errors: string[];
}

export async function runServeBenchmark(o: BenchServeOptions): Promise<BenchServeResult> {
  const log = o.log ?? ((line: string) => console.log(line));
  const samples = randomDataset(o.tokenizer, o.numPrompts, o.randomInputLen, o.randomOutputLen, o.seed);
  log('Starting initial single prompt test run...');
  const test = await requestCompletion(o, { ...samples[0], outputLen: Math.min(samples[0].outputLen, 4) });
  if (!test.success) throw new Error(`Initial test run failed: ${test.error}`);
  log(`Initial test run completed. Starting main benchmark run (request rate ${o.requestRate}, max concurrency ${o.maxConcurrency ?? 'unlimited'})...`);

  const intervals = poissonIntervals(samples.length, o.requestRate, seededRandom(o.seed + 1));
  let inFlight = 0;
  const slotWaiters: (() => void)[] = [];
  const acquire = async () => {
    while (o.maxConcurrency !== null && inFlight >= o.maxConcurrency) await new Promise<void>((r) => slotWaiters.push(r));
    inFlight++;
  };
  const release = () => {
    inFlight--;
    slotWaiters.shift()?.();
  };

  const health = probeHealth(o.baseUrl, o.healthIntervalMs);
  const t0 = performance.now();
  const tasks: Promise<RequestFuncOutput>[] = [];
  for (const [i, s] of samples.entries()) {
    if (intervals[i] > 0) await new Promise((r) => setTimeout(r, intervals[i] * 1000));
    await acquire();
    tasks.push(requestCompletion(o, s).finally(release));
  }
  const outputs = await Promise.all(tasks);
  const durationS = (performance.now() - t0) / 1000;
  const healthLat = (await health.stop()).map((v) => v * 1000).sort((a, b) => a - b);

  return {
    metrics: calculateMetrics(outputs, durationS, o.percentiles),
    health: {
      count: healthLat.length,
      p50Ms: percentile(healthLat, 50),
      p99Ms: percentile(healthLat, 99),
      maxMs: healthLat.at(-1) ?? 0,
    },
    errors: [...new Set(outputs.filter((x) => !x.success).map((x) => x.error))].slice(0, 5),
  };
}

export function formatResult(r: BenchServeResult, percentiles: number[]): string {
  const m = r.metrics;
  const row = (k: string, v: string | number) => `${k.padEnd(40)} ${typeof v === 'number' ? (Number.isInteger(v) ? v : v.toFixed(2)) : v}`;
  const head = (t: string, fill = '-') => {
    const side = Math.max(0, 50 - t.length);
    return fill.repeat(Math.floor(side / 2)) + t + fill.repeat(Math.ceil(side / 2));
  };
  const block = (title: string, short: string, s: Summary) => [
    head(title),
    row(`Mean ${short} (ms):`, s.mean),
    row(`Median ${short} (ms):`, s.median),
    ...percentiles.map((p) => row(`P${p} ${short} (ms):`, s.percentiles[String(p)])),
  ];
  return [
    head(' Serving Benchmark Result ', '='),
    row('Successful requests:', m.completed),
    row('Failed requests:', m.failed),
    row('Benchmark duration (s):', m.durationS),
    row('Total input tokens:', m.totalInput),
    row('Total generated tokens:', m.totalOutput),
    row('Request throughput (req/s):', m.requestThroughput),
    row('Output token throughput (tok/s):', m.outputThroughput),
    row('Total Token throughput (tok/s):', m.totalTokenThroughput),
    ...block('Time to First Token', 'TTFT', m.ttft),
    ...block('Time per Output Token (excl. 1st token)', 'TPOT', m.tpot),
    ...block('Inter-token Latency', 'ITL', m.itl),
    ...block('End-to-end Latency', 'E2EL', m.e2el),
    head('/health during the run'),
    row('Probes:', r.health.count),
    row('P50 /health (ms):', r.health.p50Ms),
    row('P99 /health (ms):', r.health.p99Ms),
    row('Max /health (ms):', r.health.maxMs),
    '='.repeat(50),
  ].join('\n');
}

export function registerBenchServe(bench: Command): Command {
  return bench
    .command('serve')
    .description("benchmark a running server (vLLM's benchmark_serving, random dataset)")
    .option('--base-url <url>', 'server URL (default: http://HOST:PORT)')
    .option('--host <host>', 'server host', '127.0.0.1')
    .option('--port <port>', 'server port', parseIntFlag, 8000)
    .option('--endpoint <path>', 'completions route', '/v1/completions')
    .option('--model <name>', 'model name (default: the server\'s first model)')
    .option('--tokenizer <path-or-id>', 'tokenizer folder or Hub id (default: the model\'s)')
    .option('--dataset-name <name>', "only 'random'", 'random')
    .option('--num-prompts <n>', 'requests to send', parseIntFlag, 1000)
    .option('--random-input-len <n>', 'prompt tokens', parseIntFlag, 1024)
    .option('--random-output-len <n>', 'tokens to generate', parseIntFlag, 128)
    .option('--request-rate <r>', 'requests per second (Poisson); inf: all at once', (v) => (v === 'inf' ? Infinity : parseNumFlag(v)), Infinity)
    .option('--max-concurrency <n>', 'requests in flight at most', parseIntFlag)
    .option('--ignore-eos', 'generate exactly --random-output-len tokens', false)
    .option('--seed <n>', 'dataset and arrival seed', parseIntFlag, 0)
    .option('--metric-percentiles <list>', 'comma-separated percentiles', '99')
    .option('--health-interval-ms <n>', 'period of the /health probe', parseIntFlag, 100)
    .option('--result-file <path>', 'write the result as JSON')
    .action(async (o: Record<string, unknown>) => {
      const baseUrl = ((o.baseUrl as string | undefined) ?? `http://${o.host as string}:${o.port as number}`).replace(/\/$/, '');
      if (o.datasetName !== 'random') throw new Error(`--dataset-name ${o.datasetName as string}: only 'random' is supported`);
      const apiKey = process.env.VLLM_API_KEY ?? process.env.OPENAI_API_KEY;
      let model = o.model as string | undefined;
      let root: string | null = null;
      const res = await fetch(`${baseUrl}/v1/models`, { headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {} });
      if (!res.ok) throw new Error(`GET ${baseUrl}/v1/models answered ${res.status}: is the server running?`);
      const models = (await res.json()) as { data: { id: string; root: string | null }[] };
      model ??= models.data[0].id;
      root = models.data.find((m) => m.id === model)?.root ?? null;
      // A folder that exists, else a Hub id (the served name or its root), whose tokenizer files are fetched.
      const tokName = (o.tokenizer as string | undefined) ?? [model, root].find((p) => p && existsSync(p)) ?? [model, root].find((p) => p && REPO_ID_RE.test(p));
      if (!tokName) throw new Error('cannot find the tokenizer: pass --tokenizer with the model folder or Hub id');
      const tokPath = await resolveModelPath(tokName, { want: { config: false, tokenizer: true, weights: false } });
      const percentiles = String(o.metricPercentiles).split(',').map(Number);
      const opts: BenchServeOptions = {
        baseUrl,
        endpoint: o.endpoint as string,
        model,
        tokenizer: Tokenizer.fromPretrained(tokPath),
        numPrompts: o.numPrompts as number,
        randomInputLen: o.randomInputLen as number,
        randomOutputLen: o.randomOutputLen as number,
        requestRate: o.requestRate as number,
        maxConcurrency: (o.maxConcurrency as number | undefined) ?? null,
        ignoreEos: o.ignoreEos as boolean,
        seed: o.seed as number,
        percentiles,
        apiKey,
        healthIntervalMs: o.healthIntervalMs as number,
      };
      const result = await runServeBenchmark(opts);
      console.log(formatResult(result, percentiles));
      if (result.errors.length > 0) console.log(`Errors (first ${result.errors.length} distinct):\n  ${result.errors.join('\n  ')}`);
      if (o.resultFile) {
        const { tokenizer: _t, apiKey: _k, log: _l, ...config } = opts;
        writeFileSync(
          o.resultFile as string,
          JSON.stringify(
            { date: new Date().toISOString(), command: process.argv.slice(2).join(' '), ...config, requestRate: String(config.requestRate), ...result },
            null,
            2,
          ) + '\n',
        );
      }
    });
}
