// The soak test (`npm run test:soak`): `vllm-ts serve` as a child process on
// loopback with a deliberately small KV cache, N planned requests from C
// concurrent clients, then the checks: every request that was not aborted
// completes, greedy and seeded outputs equal the same request run alone, every
// malformed one gets its 4xx, the gauges return to 0, RSS stays within 10%,
// /health answers under 50 ms p99 throughout. Importable (runSoak) and runnable:
//   node --import tsx tests/soak/soak.ts [--requests 2000] [--concurrency 64] [--seed 0]
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { EngineArgs } from '../../src/config/engine_args.js';
import { percentile } from '../../src/metrics/serving_benchmark.js';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { newAgent, type Outcome, sendPlanned } from './client.js';
import { computeExpected, type Expected } from './expected.js';
import { HealthProbe } from './health_probe.js';
import { metric, rssBytes, type ServeProcess, startServe } from './server_process.js';
import { type PlannedRequest, planWorkload } from './workload.js';

export const MODEL = 'models/tiny-llama-kjv';
const GC_HOOK = fileURLToPath(new URL('./gc_hook.mjs', import.meta.url));
const API_KEY = 'soak-key';

export interface SoakOptions {
  requests: number;
  concurrency: number;
  seed: number;
  /** Requests of the same mix run before RSS is first measured (default: 10% of requests, at least 2 x concurrency). */
  warmupRequests?: number;
  maxModelLen: number;
  /** Small on purpose, so that requests preempt one another. */
  kvCacheMemoryBytes: number;
  maxTokens: number;
  abortFraction: number;
  malformedFraction: number;
  /** Bound on the load phase; requests not finished by then count as timeouts. */
  timeoutMs: number;
  requestTimeoutMs: number;
  log: (line: string) => void;
}

export const DEFAULTS: SoakOptions = {
  requests: 2000,
  concurrency: 64,
  seed: 0,
  maxModelLen: 512,
  kvCacheMemoryBytes: 16 << 20,
  maxTokens: 48,
  abortFraction: 0.1,
  malformedFraction: 0.05,
  timeoutMs: 20 * 60_000,
  requestTimeoutMs: 180_000,
  log: (line) => process.stderr.write(line + '\n'),
};

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface SoakSummary {
  options: Omit<SoakOptions, 'log'>;
  requests: { total: number; valid: number; abortPlanned: number; malformed: number };
  outcomes: { completed: number; aborted: number; abortPlannedButCompleted: number; malformedAnswered: number; outputsChecked: number };
  /** Status -> count of the malformed requests answered as they must be. */
  malformedByStatus: Record<string, number>;
  /** Abort mode -> count of the requests the client aborted. */
  abortsByMode: Record<string, number>;
  /** Error class -> count (empty when the run was clean). */
  errors: Record<string, number>;
  examples: string[];
  warmupErrors: Record<string, number>;
  latencyMs: { e2e: Percentiles; ttft: Percentiles };
  health: { probes: number; failures: number; p50: number; p99: number; max: number };
  rss: { before: number; after: number; changePct: number };
  gaugesAfter: { running: number; waiting: number; kvCacheUsage: number };
  preemptions: number;
  finishedWithError: number;
  serverErrorLines: string[];
  serverExit: number | string | null;
  durations: { expectedS: number; startupS: number; warmupS: number; loadS: number };
  generationTokens: number;
}

const pcts = (xs: number[]): Percentiles => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), max: s.at(-1) ?? 0 };
};

const FINISHED = new Set(['stop', 'length']);

/** The error class of one outcome, with a detail; null when it is as it must be. */
export function judge(p: PlannedRequest, o: Outcome, expected: Expected | undefined): [string, string] | null {
  const tag = `#${p.index} ${p.method} ${p.path}`;
  if (p.malformed) {
    if (o.status === null) return ['network', `${tag} (${p.malformed.what}): ${o.networkError ?? (o.timedOut ? 'timed out' : 'no answer')}`];
    if (o.status !== p.malformed.status) return ['wrong-status', `${tag} (${p.malformed.what}): ${o.status}, expected ${p.malformed.status}`];
    const code = (o.errorBody as { error?: { code?: number } } | null)?.error?.code;
    if (code !== o.status) return ['error-shape', `${tag} (${p.malformed.what}): body ${JSON.stringify(o.errorBody).slice(0, 200)}`];
    return null;
  }
  if (o.aborted) return null;
  if (o.timedOut) return ['timeout', `${tag}: no answer within the request timeout`];
  if (o.status === null) return ['network', `${tag}: ${o.networkError}`];
  if (o.status >= 500) return ['http-5xx', `${tag}: ${o.status} ${JSON.stringify(o.errorBody ?? o.streamError).slice(0, 300)}`];
  if (o.status !== 200) return ['http-4xx', `${tag}: ${o.status} ${JSON.stringify(o.errorBody).slice(0, 300)}`];
  if (o.streamError) return ['stream-error', `${tag}: ${JSON.stringify(o.streamError).slice(0, 300)}`];
  if (p.stream && !o.done) return ['incomplete', `${tag}: the stream ended without [DONE]`];
  if (o.choices.size !== p.n) return ['incomplete', `${tag}: ${o.choices.size} choices, expected ${p.n}`];
  for (const [i, c] of o.choices) {
    if (!FINISHED.has(c.finishReason ?? '')) return ['incomplete', `${tag}: choice ${i} finish_reason ${c.finishReason}`];
  }
  if (o.promptTokens !== null && o.promptTokens !== p.promptTokens) {
    return ['usage', `${tag}: prompt_tokens ${o.promptTokens}, expected ${p.promptTokens}`];
  }
  if (expected) {
    for (let i = 0; i < p.n; i++) {
      const c = o.choices.get(i)!;
      if (c.text !== expected.texts[i]) {
        return ['output-mismatch', `${tag} (${p.sampling}, choice ${i}): ${JSON.stringify(c.text)} != alone ${JSON.stringify(expected.texts[i])}\n    body: ${p.body.slice(0, 400)}`];
      }
      if (p.returnTokenIds && JSON.stringify(c.tokenIds) !== JSON.stringify(expected.tokenIds[i])) {
        return ['output-mismatch', `${tag} (${p.sampling}, choice ${i}): token ids ${JSON.stringify(c.tokenIds)} != alone ${JSON.stringify(expected.tokenIds[i])}`];
      }
    }
  }
  return null;
}

/** Runs `plan` from `concurrency` client loops; outcomes in plan order. */
async function runLoad(base: string, plan: PlannedRequest[], concurrency: number, deadline: number, requestTimeoutMs: number): Promise<Outcome[]> {
  const agent = newAgent(concurrency);
  const outcomes: Outcome[] = new Array(plan.length);
  let next = 0;
  const loop = async () => {
    while (next < plan.length) {
      const p = plan[next++];
      const left = deadline - Date.now();
      outcomes[p.index] = await sendPlanned(base, p, agent, Math.max(1, Math.min(requestTimeoutMs, left)));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  agent.destroy();
  return outcomes;
}

async function gauges(base: string) {
  return {
    running: await metric(base, 'vllm:num_requests_running'),
    waiting: await metric(base, 'vllm:num_requests_waiting'),
    kvCacheUsage: await metric(base, 'vllm:kv_cache_usage_perc'),
  };
}

/** Waits (up to `ms`) until nothing runs, waits or holds a KV block; returns the last reading. */
async function waitIdle(base: string, ms = 30_000) {
  const until = Date.now() + ms;
  let g = await gauges(base);
  while ((g.running !== 0 || g.waiting !== 0 || g.kvCacheUsage !== 0) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 100));
    g = await gauges(base);
  }
  return g;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The server's RSS once it has settled at idle. NOTE: freed memory goes back to
 * the OS a few seconds after the load stops (V8's memory reducer, malloc trims),
 * so one reading right after the load says more about timing than about leaks.
 */
async function settledRss(pid: number, maxMs = 20_000): Promise<number> {
  process.kill(pid, 'SIGUSR2'); // gc_hook.mjs: a full GC of the main isolate
  const until = Date.now() + maxMs;
  let prev = rssBytes(pid);
  let stable = 0;
  while (stable < 3 && Date.now() < until) {
    await sleep(1000);
    const now = rssBytes(pid);
    stable = Math.abs(now - prev) / prev < 0.005 ? stable + 1 : 0;
    prev = now;
  }
  return prev;
}

export async function runSoak(opts: Partial<SoakOptions> = {}): Promise<SoakSummary> {
  const o: SoakOptions = { ...DEFAULTS, ...opts };
  const { log } = o;
  const maxBodyBytes = 256 * 1024;
  const tokenizer = Tokenizer.fromPretrained(MODEL);
  const wl = { maxModelLen: o.maxModelLen, apiKey: API_KEY, maxBodyBytes, abortFraction: o.abortFraction, malformedFraction: o.malformedFraction, maxTokens: o.maxTokens };
  const plan = planWorkload(tokenizer, { ...wl, requests: o.requests, seed: o.seed });
  const warmupRequests = o.warmupRequests ?? Math.max(2 * o.concurrency, Math.round(o.requests / 10));
  o.warmupRequests = warmupRequests;
  const warmup = planWorkload(tokenizer, { ...wl, requests: warmupRequests, seed: o.seed + 1_000_003 });
  const engineArgs: EngineArgs = { model: MODEL, device: 'cpu', numThreads: 1, maxModelLen: o.maxModelLen };

  let t = performance.now();
  log(`soak: computing the expected outputs of ${plan.filter((p) => p.offline).length} greedy / seeded requests, each alone`);
  const expected = await computeExpected(plan, { ...engineArgs, kvCacheMemoryBytes: 32 << 20, maxNumSeqs: 8 });
  const expectedS = (performance.now() - t) / 1000;

  t = performance.now();
  const server: ServeProcess = await startServe(MODEL, [
    '--device', 'cpu', '--num-threads', '1', '--max-model-len', String(o.maxModelLen),
    '--kv-cache-memory-bytes', String(o.kvCacheMemoryBytes), '--api-key', API_KEY,
    '--max-request-body-bytes', String(maxBodyBytes), '--disable-log-requests',
  ], { env: { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --expose-gc --import ${JSON.stringify(GC_HOOK)}`.trim() } });
  const startupS = (performance.now() - t) / 1000;
  log(`soak: server pid ${server.pid} at ${server.base} (started in ${startupS.toFixed(1)} s)`);
  let serverExit: number | string | null = null;
  try {
    const probe = new HealthProbe(server.base, 100);
    const deadline = Date.now() + o.timeoutMs;

    t = performance.now();
    const warmOutcomes = await runLoad(server.base, warmup, o.concurrency, deadline, o.requestTimeoutMs);
    const warmupErrors: Record<string, number> = {};
    for (const p of warmup) {
      const j = judge(p, warmOutcomes[p.index], undefined);
      if (j) warmupErrors[j[0]] = (warmupErrors[j[0]] ?? 0) + 1;
    }
    await waitIdle(server.base);
    const rssBefore = await settledRss(server.pid);
    const warmupS = (performance.now() - t) / 1000;
    const preemptionsBefore = await metric(server.base, 'vllm:num_preemptions_total');
    const genBefore = await metric(server.base, 'vllm:generation_tokens_total');
    log(`soak: warm-up of ${warmup.length} requests in ${warmupS.toFixed(1)} s; server RSS ${(rssBefore / 2 ** 20).toFixed(1)} MiB`);

    t = performance.now();
    let lastLog = 0;
    const progress = setInterval(() => {
      const s = Math.round((performance.now() - t) / 1000);
      if (s - lastLog >= Number(process.env.SOAK_LOG_EVERY_S ?? 15)) {
        lastLog = s;
        void gauges(server.base).then((g) => log(`soak: ${s} s, running ${g.running}, waiting ${g.waiting}, KV ${(g.kvCacheUsage * 100).toFixed(0)}%, RSS ${mib(rssBytes(server.pid))}`), () => {});
      }
    }, 1000);
    const outcomes = await runLoad(server.base, plan, o.concurrency, deadline, o.requestTimeoutMs);
    clearInterval(progress);
    const loadS = (performance.now() - t) / 1000;

    const gaugesAfter = await waitIdle(server.base);
    const rssAfter = await settledRss(server.pid);
    const health = await probe.stop();

    const errors: Record<string, number> = {};
    const examples: string[] = [];
    let completed = 0;
    let aborted = 0;
    let abortPlannedButCompleted = 0;
    let malformedAnswered = 0;
    let outputsChecked = 0;
    const malformedByStatus: Record<string, number> = {};
    const abortsByMode: Record<string, number> = {};
    const bump = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);
    const e2e: number[] = [];
    const ttft: number[] = [];
    for (const p of plan) {
      const out = outcomes[p.index];
      const j = judge(p, out, expected.get(p.index));
      if (j) {
        errors[j[0]] = (errors[j[0]] ?? 0) + 1;
        if (examples.length < 12) examples.push(`${j[0]}: ${j[1]}`);
        continue;
      }
      if (p.malformed) {
        malformedAnswered++;
        bump(malformedByStatus, String(out.status));
      } else if (out.aborted) {
        aborted++;
        bump(abortsByMode, p.abort!.mode);
      }
      else {
        completed++;
        if (p.abort) abortPlannedButCompleted++;
        if (expected.has(p.index)) outputsChecked++;
        e2e.push(out.e2eMs);
        if (out.ttftMs !== null) ttft.push(out.ttftMs);
      }
    }
    const preemptions = (await metric(server.base, 'vllm:num_preemptions_total')) - preemptionsBefore;
    const generationTokens = (await metric(server.base, 'vllm:generation_tokens_total')) - genBefore;
    const finishedWithError = await metric(server.base, 'vllm:request_success_total', 'finished_reason="error"');
    const hs = [...health.latencies].sort((a, b) => a - b);

    serverExit = await server.stop();
    const serverErrorLines = server.stderr().split('\n').filter((l) => /^ERROR|Error:|Uncaught|FATAL/.test(l));
    return {
      options: { ...o, log: undefined } as unknown as SoakSummary['options'],
      requests: {
        total: plan.length,
        valid: plan.filter((p) => p.kind === 'valid').length,
        abortPlanned: plan.filter((p) => p.kind === 'abort').length,
        malformed: plan.filter((p) => p.kind === 'malformed').length,
      },
      outcomes: { completed, aborted, abortPlannedButCompleted, malformedAnswered, outputsChecked },
      malformedByStatus,
      abortsByMode,
      errors,
      examples,
      warmupErrors,
      latencyMs: { e2e: pcts(e2e), ttft: pcts(ttft) },
      health: { probes: hs.length, failures: health.failures.length, p50: percentile(hs, 50), p99: percentile(hs, 99), max: hs.at(-1) ?? 0 },
      rss: { before: rssBefore, after: rssAfter, changePct: ((rssAfter - rssBefore) / rssBefore) * 100 },
      gaugesAfter,
      preemptions,
      finishedWithError,
      serverErrorLines,
      serverExit,
      durations: { expectedS, startupS, warmupS, loadS },
      generationTokens,
    };
  } finally {
    if (serverExit === null) await server.stop(5000);
  }
}

/** The checks that failed (empty: the soak passed). */
export function soakFailures(s: SoakSummary, opts: { requirePreemption?: boolean } = {}): string[] {
  const f: string[] = [];
  const nErrors = Object.values(s.errors).reduce((a, b) => a + b, 0);
  if (nErrors > 0) f.push(`${nErrors} requests failed: ${JSON.stringify(s.errors)}\n  ${s.examples.join('\n  ')}`);
  if (Object.keys(s.warmupErrors).length > 0) f.push(`warm-up requests failed: ${JSON.stringify(s.warmupErrors)}`);
  if (s.outcomes.completed + s.outcomes.aborted + s.outcomes.malformedAnswered !== s.requests.total - nErrors) f.push('some requests have no outcome');
  if (s.outcomes.malformedAnswered !== s.requests.malformed) f.push(`${s.requests.malformed - s.outcomes.malformedAnswered} malformed requests did not get their 4xx`);
  const g = s.gaugesAfter;
  if (g.running !== 0 || g.waiting !== 0 || g.kvCacheUsage !== 0) f.push(`gauges did not return to 0: ${JSON.stringify(g)}`);
  if (Math.abs(s.rss.changePct) > 10) f.push(`server RSS changed ${s.rss.changePct.toFixed(1)}% (${mib(s.rss.before)} -> ${mib(s.rss.after)})`);
  if (s.health.failures > 0) f.push(`${s.health.failures} /health probes failed`);
  if (!(s.health.p99 < 50)) f.push(`/health p99 ${s.health.p99.toFixed(1)} ms (limit 50)`);
  if (s.finishedWithError > 0) f.push(`${s.finishedWithError} requests finished with reason "error" in the engine`);
  if (s.serverErrorLines.length > 0) f.push(`the server logged errors:\n  ${s.serverErrorLines.slice(0, 5).join('\n  ')}`);
  if (s.serverExit !== 0) f.push(`the server exited with ${s.serverExit} on SIGTERM`);
  if (opts.requirePreemption && s.preemptions === 0) f.push('no request was preempted: the KV cache was not small enough to test preemption');
  return f;
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
const ms = (p: Percentiles) => `p50 ${p.p50.toFixed(0)}  p90 ${p.p90.toFixed(0)}  p99 ${p.p99.toFixed(0)}  max ${p.max.toFixed(0)} ms`;

export function formatSummary(s: SoakSummary): string {
  const r = s.requests;
  const oc = s.outcomes;
  return [
    `requests       ${r.total} (${r.valid} valid, ${r.abortPlanned} aborted by the client, ${r.malformed} malformed) from ${s.options.concurrency} clients`,
    `outcomes       ${oc.completed} completed (${oc.outputsChecked} outputs checked against the request run alone; ${oc.abortPlannedButCompleted} finished before their planned abort), ${oc.aborted} aborted, ${oc.malformedAnswered} malformed answered with their 4xx`,
    `malformed      by status ${JSON.stringify(s.malformedByStatus)}; aborted by mode ${JSON.stringify(s.abortsByMode)}`,
    `errors         ${Object.keys(s.errors).length === 0 ? 'none' : JSON.stringify(s.errors)}`,
    ...s.examples.map((e) => `  ${e}`),
    `e2e latency    ${ms(s.latencyMs.e2e)}`,
    `TTFT (stream)  ${ms(s.latencyMs.ttft)}`,
    `/health        ${s.health.probes} probes, p50 ${s.health.p50.toFixed(1)}  p99 ${s.health.p99.toFixed(1)}  max ${s.health.max.toFixed(1)} ms, ${s.health.failures} failed`,
    `server RSS     ${mib(s.rss.before)} after warm-up -> ${mib(s.rss.after)} after the run (${s.rss.changePct >= 0 ? '+' : ''}${s.rss.changePct.toFixed(1)}%)`,
    `gauges after   running ${s.gaugesAfter.running}, waiting ${s.gaugesAfter.waiting}, kv_cache_usage_perc ${s.gaugesAfter.kvCacheUsage}`,
    `engine         ${s.preemptions} preemptions, ${s.generationTokens} tokens generated (${(s.generationTokens / s.durations.loadS).toFixed(0)} tok/s), ${s.finishedWithError} finished with error`,
    `time           expected outputs ${s.durations.expectedS.toFixed(1)} s, startup ${s.durations.startupS.toFixed(1)} s, warm-up ${s.durations.warmupS.toFixed(1)} s, load ${s.durations.loadS.toFixed(1)} s`,
    `server exit    ${s.serverExit} (SIGTERM)`,
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string' },
      concurrency: { type: 'string' },
      seed: { type: 'string' },
      warmup: { type: 'string' },
      'timeout-s': { type: 'string' },
      json: { type: 'string' },
    },
  });
  const num = (v: string | undefined, d: number) => (v === undefined ? d : Number(v));
  const summary = await runSoak({
    requests: num(values.requests, DEFAULTS.requests),
    concurrency: num(values.concurrency, DEFAULTS.concurrency),
    seed: num(values.seed, DEFAULTS.seed),
    warmupRequests: values.warmup === undefined ? undefined : Number(values.warmup),
    timeoutMs: num(values['timeout-s'], DEFAULTS.timeoutMs / 1000) * 1000,
  });
  console.log(formatSummary(summary));
  if (values.json) {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(values.json, JSON.stringify(summary, null, 2));
  }
  const failures = soakFailures(summary, { requirePreemption: true });
  if (failures.length > 0) {
    console.log(`\nFAILED:\n- ${failures.join('\n- ')}`);
    process.exit(1);
  }
  console.log('\nsoak passed');
}
