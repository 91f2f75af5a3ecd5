// vLLM's request-phase and per-step metric families over loopback, read from
// GET /metrics: vllm:iteration_tokens_total, request_queue / inference / prefill /
// decode_time_seconds, request_params_n and _max_tokens (vLLM's bucket boundaries),
// num_requests_waiting_by_reason and cache_config_info; plus the phase arithmetic
// of RequestTiming on known timestamps.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { newIterationStats, ParentTiming, RequestTiming } from '../../src/metrics/stats.js';
import { MODEL, startServer, type TestServer, waitFor } from './helpers.js';

let s: TestServer;
let client: OpenAI;

before(async () => {
  // maxNumSeqs 2: a burst of requests has to queue
  s = await startServer({}, { maxNumSeqs: 2 });
  client = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'none', maxRetries: 0 });
});

after(async () => {
  await s.server.close();
});

interface Sample { name: string; labels: Record<string, string>; value: number }

async function scrape(): Promise<Sample[]> {
  const text = await (await fetch(`${s.base}/metrics`)).text();
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

const one = (samples: Sample[], name: string, labels: Record<string, string> = {}) => {
  const found = samples.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  assert.equal(found.length, 1, `${name} ${JSON.stringify(labels)}: ${found.length} samples`);
  return found[0].value;
};
const les = (samples: Sample[], name: string) => samples.filter((x) => x.name === `${name}_bucket`).map((x) => x.labels.le);
const LATENCY = ['0.3', '0.5', '0.8', '1', '1.5', '2', '2.5', '5', '10', '15', '20', '30', '40', '50', '60', '120', '240', '480', '960', '1920', '7680', '+Inf'];

test('RequestTiming: the phases from the core events and token times; n observed once per user request', () => {
  const parent = new ParentTiming(2);
  const a = new RequestTiming(100, 7, 32, parent);
  const b = new RequestTiming(100, 7, 32, parent);
  a.onEvents([{ type: 'queued', timestamp: 100.5 }, { type: 'scheduled', timestamp: 102 }]);
  const st = newIterationStats(0, true);
  a.onTokens(1, 103, st);
  a.onEvents([{ type: 'preempted', timestamp: 103.5 }, { type: 'scheduled', timestamp: 104 }]);
  a.onTokens(2, 106, st);
  a.onFinished('length', 106.5, st);
  assert.deepEqual(st.nParams, [], 'the other child is still running');
  const f = st.finishedRequests[0];
  assert.equal(f.queuedTime, 1.5, 'first queued to first scheduled');
  assert.equal(f.prefillTime, 1, 'first scheduled to the first token');
  assert.equal(f.decodeTime, 3, 'first to last token (the preemption inside)');
  assert.equal(f.inferenceTime, 4, 'first scheduled to the last token');
  assert.equal(f.e2eLatency, 6.5);
  assert.equal(f.maxTokensParam, 32);
  b.onFinished('abort', 101, st);
  assert.deepEqual(st.nParams, [2]);
  const aborted = st.finishedRequests[1];
  assert.deepEqual([aborted.queuedTime, aborted.prefillTime, aborted.decodeTime, aborted.inferenceTime], [null, null, null, null], 'never scheduled: no phase');
});

test('phase histograms, params histograms and iteration tokens with vLLM buckets after real requests', async () => {
  // six streamed requests at once: two run, four queue (maxNumSeqs 2); 48 tokens each, so
  // that the queue lasts long enough for the scrapes below to see it (CPU decode replays
  // graphs: at 12 tokens the whole burst could end between two scrapes)
  const runs = Array.from({ length: 6 }, (_, i) => (async () => {
    let text = '';
    const stream = await client.completions.create({ model: MODEL, prompt: `In the beginning ${i}`, max_tokens: 48, stream: true, ignore_eos: true } as OpenAI.CompletionCreateParamsStreaming);
    for await (const c of stream) text += c.choices[0]?.text ?? '';
    return text;
  })());
  let sawWaiting = false;
  const watch = waitFor(async () => {
    const m = await scrape();
    const waiting = one(m, 'vllm:num_requests_waiting');
    if (waiting > 0) {
      sawWaiting = true;
      assert.equal(one(m, 'vllm:num_requests_waiting_by_reason', { reason: 'capacity' }), waiting, 'all wait for capacity');
      assert.equal(one(m, 'vllm:num_requests_waiting_by_reason', { reason: 'deferred' }), 0);
    }
    return sawWaiting;
  }, 20_000);
  await Promise.all(runs);
  await watch;
  await client.completions.create({ model: MODEL, prompt: 'And God said', max_tokens: 5, n: 3, temperature: 1, seed: 1 });
  await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4 });
  assert.ok(await waitFor(() => s.engine.numUnfinishedRequests === 0));
  const m = await scrape();

  assert.ok(sawWaiting, 'the burst queued');
  assert.equal(one(m, 'vllm:num_requests_waiting_by_reason', { reason: 'capacity' }), 0);

  // 6 + 3 + 1 engine requests finished, each with its phases
  for (const name of ['vllm:request_queue_time_seconds', 'vllm:request_prefill_time_seconds', 'vllm:request_decode_time_seconds', 'vllm:request_inference_time_seconds']) {
    assert.equal(one(m, `${name}_count`), 10, name);
    assert.deepEqual(les(m, name), LATENCY, `${name}: vLLM's request_latency_buckets`);
  }
  const sum = (name: string) => one(m, `${name}_sum`);
  assert.ok(Math.abs(sum('vllm:request_inference_time_seconds') - sum('vllm:request_prefill_time_seconds') - sum('vllm:request_decode_time_seconds')) < 1e-6, 'inference = prefill + decode');
  assert.ok(sum('vllm:request_queue_time_seconds') > 0, 'the burst waited in the queue');
  assert.ok(sum('vllm:e2e_request_latency_seconds') + 1e-3 >= sum('vllm:request_queue_time_seconds') + sum('vllm:request_inference_time_seconds'));

  // n: one sample per user request (6 x n=1, 1 x n=3, 1 chat)
  assert.equal(one(m, 'vllm:request_params_n_count'), 8);
  assert.equal(one(m, 'vllm:request_params_n_sum'), 10);
  assert.deepEqual(les(m, 'vllm:request_params_n'), ['1', '2', '5', '10', '20', '+Inf']);
  assert.equal(one(m, 'vllm:request_params_n_bucket', { le: '2' }), 7);
  // max_tokens: one per engine request (vLLM's 1-2-5 buckets up to max_model_len 512)
  assert.equal(one(m, 'vllm:request_params_max_tokens_count'), 10);
  assert.equal(one(m, 'vllm:request_params_max_tokens_sum'), 6 * 48 + 3 * 5 + 4);
  assert.deepEqual(les(m, 'vllm:request_params_max_tokens'), ['1', '2', '5', '10', '20', '50', '100', '200', '500', '+Inf']);

  // every token the engine processed went through some step
  assert.equal(one(m, 'vllm:iteration_tokens_total_sum'), one(m, 'vllm:prompt_tokens_total') + one(m, 'vllm:generation_tokens_total'));
  assert.ok(one(m, 'vllm:iteration_tokens_total_count') >= 12, 'at least one sample per decode step');
  assert.deepEqual(les(m, 'vllm:iteration_tokens_total'), ['1', '8', '16', '32', '64', '128', '256', '512', '1024', '2048', '4096', '8192', '16384', '+Inf']);
  for (const x of m.filter((x) => x.name.startsWith('vllm:'))) assert.equal(x.labels.engine, '0', `${x.name} has engine="0"`);
});

test('vllm:cache_config_info: an info gauge of the cache configuration', async () => {
  const m = await scrape();
  const info = m.filter((x) => x.name === 'vllm:cache_config_info');
  assert.equal(info.length, 1);
  assert.equal(info[0].value, 1);
  const c = s.engine.cacheConfig;
  assert.deepEqual(info[0].labels, {
    block_size: String(c.blockSize),
    cache_dtype: 'auto',
    enable_prefix_caching: 'True',
    engine: '0',
    gpu_memory_utilization: '0.9',
    kv_cache_memory_bytes: String(8 << 20),
    num_cpu_blocks: 'None',
    num_gpu_blocks: String(c.numBlocks),
    prefix_caching_hash_algo: 'sha256',
    sliding_window: 'None',
  });
});

// docs/deployment.md: the Gateway API Inference Extension's endpoint picker scrapes
// these names by default (its --total-queued-requests-metric, --total-running-requests-metric,
// --kv-cache-usage-percentage-metric and --cache-info-metric flags), as gauges.
test('the endpoint picker\'s default metrics are there, as gauges, with the labels its prefix-cache scorer reads', async () => {
  const text = await (await fetch(`${s.base}/metrics`)).text();
  const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
  for (const name of ['vllm:num_requests_waiting', 'vllm:num_requests_running', 'vllm:kv_cache_usage_perc', 'vllm:cache_config_info']) {
    assert.equal(types.get(name), 'gauge', name);
  }
  const m = await scrape();
  const usage = one(m, 'vllm:kv_cache_usage_perc');
  assert.ok(usage >= 0 && usage <= 1, `kv_cache_usage_perc is a fraction (${usage})`);
  const info = m.find((x) => x.name === 'vllm:cache_config_info')!;
  assert.ok(Number(info.labels.block_size) > 0 && Number(info.labels.num_gpu_blocks) > 0, JSON.stringify(info.labels));
});
