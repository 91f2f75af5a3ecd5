// The OpenAI-compatible server end to end over loopback: the official openai
// client for completions and chat (streamed, with usage, aborted), raw HTTP for
// bad inputs, and answers checked against HuggingFace's greedy continuations and
// the offline LLM.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import OpenAI from 'openai';
import { LLM } from '../../src/entrypoints/llm.js';
import { attachServer, metric, MODEL, SMALL_ARGS, startServer, type TestServer, waitFor } from './helpers.js';

const KEY = 'test-key';
let s: TestServer;
let client: OpenAI;
const ref = JSON.parse(readFileSync('tests/fixtures/tiny-llama-kjv/reference.json', 'utf8')) as {
  cases: { prompt: string; prompt_ids: number[]; generated_ids: number[]; generated_text: string }[];
};
const case0 = ref.cases[0];
const hfText = case0.generated_text.replace('<|endoftext|>', '');

before(async () => {
  // NOTE: with --enable-prompt-tokens-details, so that the prefix-cache tests see cached_tokens.
  s = await startServer({ apiKeys: [KEY], maxBodyBytes: 64 * 1024, enablePromptTokensDetails: true });
  client = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: KEY, maxRetries: 0 });
});

after(async () => {
  await s.server.close();
});

// The tests read fields of several response shapes.
type Json = any;
const json = async (res: Response): Promise<Json> => res.json();

async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(s.base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}`, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function runningBackToZero(): Promise<void> {
  const ok = await waitFor(async () => (await metric(s.base, 'vllm:num_requests_running')) === 0 && s.engine.numUnfinishedRequests === 0);
  assert.ok(ok, 'vllm:num_requests_running returns to 0');
  assert.equal(await metric(s.base, 'vllm:kv_cache_usage_perc'), 0, 'every KV block is free again');
}

test('completions: greedy text is HuggingFace\'s; streamed and joined equals non-streamed and offline LLM.generate', async () => {
  const full = await client.completions.create({ model: MODEL, prompt: case0.prompt, max_tokens: 24, temperature: 0 });
  assert.match(full.id, /^cmpl-/);
  assert.equal(full.object, 'text_completion');
  assert.equal(full.model, MODEL);
  assert.equal(full.choices.length, 1);
  assert.equal(full.choices[0].text, hfText);
  assert.equal(full.choices[0].finish_reason, 'stop');
  assert.deepEqual(full.usage, { prompt_tokens: case0.prompt_ids.length, completion_tokens: case0.generated_ids.length, total_tokens: case0.prompt_ids.length + case0.generated_ids.length });

  const stream = await client.completions.create({
    model: MODEL, prompt: case0.prompt, max_tokens: 24, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  let joined = '';
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | null | undefined = null;
  let chunks = 0;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      joined += c.text;
      finish = c.finish_reason ?? finish;
      chunks++;
    }
  }
  assert.ok(chunks > 3, 'the answer comes in several chunks');
  assert.equal(joined, full.choices[0].text);
  assert.equal(finish, 'stop');
  assert.deepEqual(usage, full.usage);

  const llm = await LLM.create({ ...SMALL_ARGS, useTqdm: false });
  try {
    const [offline] = await llm.generate(case0.prompt, { temperature: 0, maxTokens: 24 });
    assert.equal(offline.outputs[0].text, joined);
    const [chatOffline] = await llm.chat([{ role: 'user', content: 'Who art thou?' }], { temperature: 0, maxTokens: 12 });
    const chat = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Who art thou?' }], max_completion_tokens: 12, temperature: 0 });
    assert.equal(chat.choices[0].message.content, chatOffline.outputs[0].text);
  } finally {
    llm.close();
  }
});

test('chat: streamed deltas joined equal the message; role first, usage last', async () => {
  const messages = [{ role: 'system' as const, content: 'Speak as the scripture.' }, { role: 'user' as const, content: 'What is love?' }];
  const full = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 16, temperature: 0, logprobs: true, top_logprobs: 3 });
  assert.match(full.id, /^chatcmpl-/);
  assert.equal(full.object, 'chat.completion');
  assert.equal(full.choices[0].message.role, 'assistant');
  const content = full.choices[0].logprobs!.content!;
  assert.equal(content.length, full.usage!.completion_tokens);
  assert.equal(content.map((c) => c.token).join(''), full.choices[0].message.content);
  for (const c of content) {
    assert.equal(c.top_logprobs.length, 3);
    assert.equal(c.top_logprobs[0].token, c.token, 'greedy picks the most likely token');
    assert.ok(c.top_logprobs[0].logprob >= c.top_logprobs[1].logprob);
  }

  const stream = await client.chat.completions.create({
    model: MODEL, messages, max_tokens: 16, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  const events: OpenAI.ChatCompletionChunk[] = [];
  for await (const chunk of stream) events.push(chunk);
  assert.equal(events[0].choices[0].delta.role, 'assistant');
  assert.equal(events[0].object, 'chat.completion.chunk');
  const joined = events.flatMap((e) => e.choices.map((c) => c.delta.content ?? '')).join('');
  assert.equal(joined, full.choices[0].message.content);
  const last = events.at(-1)!;
  assert.deepEqual(last.choices, []);
  const { prompt_tokens_details: _, ...usage } = last.usage!;
  assert.deepEqual(usage, { prompt_tokens: full.usage!.prompt_tokens, completion_tokens: full.usage!.completion_tokens, total_tokens: full.usage!.total_tokens });
  assert.equal(last.usage!.prompt_tokens_details?.cached_tokens, 16, 'the repeated conversation hits the prefix cache');
  assert.equal(events.at(-2)!.choices[0].finish_reason, full.choices[0].finish_reason);
});

test('n, seed, echo, logprobs, stop strings and several prompts', async () => {
  const body = { model: MODEL, prompt: case0.prompt, max_tokens: 8, n: 2, seed: 7, temperature: 1, logprobs: 1, echo: true };
  const a = await client.completions.create(body);
  const b = await client.completions.create(body);
  assert.equal(a.choices.length, 2);
  assert.deepEqual(a.choices.map((c) => c.index), [0, 1]);
  assert.deepEqual(a.choices.map((c) => c.text), b.choices.map((c) => c.text), 'seeded sampling repeats');
  for (const c of a.choices) {
    assert.ok(c.text.startsWith(case0.prompt));
    const lp = c.logprobs!;
    assert.equal(lp.tokens!.length, case0.prompt_ids.length + 8);
    assert.equal(lp.token_logprobs![0], null);
    assert.equal(lp.tokens!.join(''), c.text);
  }
  // streamed n = 2: each choice joined equals the non-streamed one
  const stream = await client.completions.create({ ...body, echo: false, logprobs: undefined, stream: true });
  const parts = ['', ''];
  for await (const chunk of stream) for (const c of chunk.choices) parts[c.index] += c.text;
  assert.deepEqual(parts, a.choices.map((c) => c.text.slice(case0.prompt.length)));

  const stopped = await client.completions.create({ model: MODEL, prompt: case0.prompt, max_tokens: 24, temperature: 0, stop: [' ever'] });
  assert.equal(stopped.choices[0].text, hfText.slice(0, hfText.indexOf(' ever')));
  assert.equal(stopped.choices[0].finish_reason, 'stop');
  assert.equal((stopped.choices[0] as unknown as { stop_reason: string }).stop_reason, ' ever');

  const multi = await client.completions.create({ model: MODEL, prompt: [ref.cases[1].prompt, case0.prompt], max_tokens: 5, temperature: 0 });
  assert.equal(multi.choices[1].text, s.engine.tokenizer.decode(case0.generated_ids.slice(0, 5)));
  assert.equal(multi.usage!.prompt_tokens, ref.cases[1].prompt_ids.length + case0.prompt_ids.length);
  await runningBackToZero();
});

test('prefix caching: a repeated prompt reports cached_tokens; another cache_salt does not share', async () => {
  const prompt = ref.cases.map((c) => c.prompt).join(' ').repeat(3);
  const first = await post('/v1/completions', { prompt, max_tokens: 2, temperature: 0 });
  const firstBody = await json(first);
  assert.equal(firstBody.usage.prompt_tokens_details, undefined);
  const again = await json(await post('/v1/completions', { prompt, max_tokens: 2, temperature: 0 }));
  const cached = again.usage.prompt_tokens_details.cached_tokens;
  assert.ok(cached >= 16 && cached % 16 === 0 && cached < again.usage.prompt_tokens, `cached ${cached}`);
  const salted = await json(await post('/v1/completions', { prompt, max_tokens: 2, temperature: 0, cache_salt: 'tenant-b' }));
  assert.equal(salted.usage.prompt_tokens_details, undefined);
  assert.equal(salted.choices[0].text, again.choices[0].text);
});

test('an aborted stream (AbortController) aborts the request: running back to 0, counted as abort', async () => {
  const aborts = await metric(s.base, 'vllm:request_success_total', 'finished_reason="abort"');
  const ac = new AbortController();
  const stream = await client.completions.create(
    { model: MODEL, prompt: 'And it came to pass', max_tokens: 400, temperature: 0, ignore_eos: true, stream: true } as OpenAI.CompletionCreateParamsStreaming,
    { signal: ac.signal },
  );
  let n = 0;
  try {
    for await (const _ of stream) if (++n === 3) ac.abort();
  } catch (e) {
    assert.equal((e as Error).name, 'APIUserAbortError');
  }
  assert.ok(n >= 3 && n < 50, `the stream stopped after the abort (${n} chunks)`);
  await runningBackToZero();
  assert.equal(await metric(s.base, 'vllm:request_success_total', 'finished_reason="abort"'), aborts + 1);
});

test('a client that disconnects from a non-streamed request aborts it', async () => {
  const aborts = await metric(s.base, 'vllm:request_success_total', 'finished_reason="abort"');
  await new Promise<void>((resolve) => {
    const req = httpRequest(`${s.base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` } });
    req.on('error', () => resolve());
    req.end(JSON.stringify({ messages: [{ role: 'user', content: 'Tell all.' }], max_tokens: 400, ignore_eos: true }));
    setTimeout(() => {
      req.destroy();
      resolve();
    }, 150);
  });
  await waitFor(() => s.engine.numUnfinishedRequests === 0);
  await runningBackToZero();
  assert.equal(await metric(s.base, 'vllm:request_success_total', 'finished_reason="abort"'), aborts + 1);
});

test('bad inputs get OpenAI error bodies with vLLM status codes and never reach the engine', async () => {
  const promptBefore = await metric(s.base, 'vllm:prompt_tokens_total');
  const long = 'the '.repeat(600);
  const chat = (extra: object) => ({ messages: [{ role: 'user', content: 'hi' }], ...extra });
  const cases: [string, string, unknown, number, string | null, Record<string, string>?][] = [
    ['malformed JSON', '/v1/completions', '{"prompt": "x"', 400, null],
    ['a JSON array', '/v1/completions', [1, 2], 400, null],
    ['wrong type', '/v1/completions', { prompt: 'x', temperature: 'hot' }, 400, 'temperature'],
    ['wrong type in chat', '/v1/chat/completions', { messages: 'hi' }, 400, 'messages'],
    ['unknown model', '/v1/completions', { prompt: 'x', model: 'gpt-5' }, 404, 'model'],
    ['prompt over the context', '/v1/completions', { prompt: long, max_tokens: 1 }, 400, 'prompt'],
    ['prompt + max_tokens over the context', '/v1/completions', { prompt: 'x', max_tokens: 600 }, 400, 'max_tokens'],
    ['chat max_completion_tokens over the context', '/v1/chat/completions', chat({ max_completion_tokens: 1000 }), 400, 'max_tokens'],
    ['temperature out of range', '/v1/completions', { prompt: 'x', temperature: 3 }, 400, 'temperature'],
    ['top_p out of range', '/v1/chat/completions', chat({ top_p: 0 }), 400, 'top_p'],
    ['negative max_tokens', '/v1/completions', { prompt: 'x', max_tokens: -1 }, 400, 'max_tokens'],
    ['too many logprobs', '/v1/completions', { prompt: 'x', logprobs: 21 }, 400, 'logprobs'],
    ['stream_options without stream', '/v1/completions', { prompt: 'x', stream_options: { include_usage: true } }, 400, 'stream_options'],
    ['stream_options without stream (chat)', '/v1/chat/completions', chat({ stream: false, stream_options: { include_usage: true } }), 400, 'stream_options'],
    ['top_logprobs without logprobs', '/v1/chat/completions', chat({ top_logprobs: 2 }), 400, 'top_logprobs'],
    ['empty prompt', '/v1/completions', { prompt: '' }, 400, 'prompt'],
    ['empty token list', '/v1/completions', { prompt: [] }, 400, 'prompt'],
    ['out-of-vocabulary token id', '/v1/completions', { prompt: [1, 2, 4096] }, 400, 'prompt'],
    ['negative token id', '/v1/completions', { prompt: [-1] }, 400, null],
    ['out-of-vocabulary stop_token_ids', '/v1/completions', { prompt: 'x', stop_token_ids: [99999] }, 400, 'stop_token_ids'],
    ['untrusted chat_template', '/v1/chat/completions', chat({ chat_template: '{{ 1 }}' }), 400, 'chat_template'],
    ['image content', '/v1/chat/completions', { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://x' } }] }] }, 400, 'messages.0.content'],
    ['body over the size limit', '/v1/completions', { prompt: 'x'.repeat(70 * 1024) }, 413, null],
    ['non-JSON content type', '/v1/completions', 'prompt=x', 415, null, { 'content-type': 'application/x-www-form-urlencoded' }],
    ['missing API key', '/v1/completions', { prompt: 'x' }, 401, null, { authorization: '' }],
    ['wrong API key', '/v1/completions', { prompt: 'x' }, 401, null, { authorization: 'Bearer test-kez' }],
    ['detokenize out of vocabulary', '/detokenize', { tokens: [5, 100000] }, 400, 'tokens'],
  ];
  for (const [what, path, body, status, param, headers] of cases) {
    const res = await post(path, body, headers);
    assert.equal(res.status, status, `${what}: status`);
    const json = (await res.json()) as { error: { message: string; type: string; param: string | null; code: number } };
    assert.equal(typeof json.error.message, 'string', `${what}: message`);
    assert.ok(json.error.message.length > 0);
    assert.equal(typeof json.error.type, 'string', `${what}: type`);
    assert.equal(json.error.code, status, `${what}: code`);
    if (param !== null) assert.equal(json.error.param, param, `${what}: param (${json.error.message})`);
  }
  // Oversized headers are refused by node:http itself (431).
  assert.equal((await fetch(`${s.base}/health`, { headers: { 'x-junk': 'a'.repeat(20_000) } })).status, 431);
  // Unknown fields are ignored; the engine still serves.
  const ok = await post('/v1/completions', { prompt: 'x', max_tokens: 1, frobnicate: { deep: [1] }, temperature: 0 });
  assert.equal(ok.status, 200);
  assert.equal(await metric(s.base, 'vllm:prompt_tokens_total'), promptBefore + 1, 'only the valid request reached the engine');
  assert.equal((await fetch(`${s.base}/health`)).status, 200);
});

test('health, ping, version, models, tokenize, detokenize, metrics', async () => {
  assert.equal((await fetch(`${s.base}/health`)).status, 200, '/health needs no key');
  assert.equal((await fetch(`${s.base}/ping`, { method: 'POST' })).status, 200);
  assert.match(((await (await fetch(`${s.base}/version`)).json()) as { version: string }).version, /^\d+\.\d+\.\d+/);
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), [MODEL]);
  assert.equal((models.data[0] as unknown as { max_model_len: number }).max_model_len, 512);

  const tok = await json(await post('/tokenize', { prompt: case0.prompt }));
  assert.deepEqual(tok.tokens, case0.prompt_ids);
  assert.equal(tok.count, case0.prompt_ids.length);
  assert.equal(tok.max_model_len, 512);
  const tokChat = await json(await post('/tokenize', { messages: [{ role: 'user', content: 'hi' }] }));
  const rendered = '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n';
  assert.deepEqual(tokChat.tokens, s.engine.tokenizer.encode(rendered, { addSpecialTokens: false }));
  const detok = await json(await post('/detokenize', { tokens: case0.generated_ids.slice(0, -1) }));
  assert.equal(detok.prompt, hfText);

  const text = await (await fetch(`${s.base}/metrics`)).text();
  for (const name of [
    'vllm:num_requests_running', 'vllm:num_requests_waiting', 'vllm:kv_cache_usage_perc', 'vllm:prompt_tokens_total',
    'vllm:generation_tokens_total', 'vllm:request_success_total', 'vllm:num_preemptions_total',
    'vllm:time_to_first_token_seconds_bucket', 'vllm:inter_token_latency_seconds_bucket', 'vllm:e2e_request_latency_seconds_bucket',
    'vllm:prefix_cache_queries_total', 'vllm:prefix_cache_hits_total',
  ]) {
    assert.ok(text.includes(`${name}{`) && text.includes(`model_name="${MODEL}"`), `${name} is exported`);
  }
  assert.ok((await metric(s.base, 'vllm:request_success_total', 'finished_reason="length"')) > 0);
  assert.ok((await metric(s.base, 'vllm:prefix_cache_hits_total')) > 0);
});

test('CORS headers only with allowed origins', async () => {
  const preflight = (base: string, origin: string) =>
    fetch(`${base}/v1/completions`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST' } });
  const plain = await preflight(s.base, 'http://a.example');
  assert.equal(plain.headers.get('access-control-allow-origin'), null);
  const cors = await attachServer(s.engine, { allowedOrigins: ['http://a.example'] });
  try {
    const yes = await preflight(cors.base, 'http://a.example');
    assert.equal(yes.status, 204);
    assert.equal(yes.headers.get('access-control-allow-origin'), 'http://a.example');
    const no = await preflight(cors.base, 'http://b.example');
    assert.equal(no.headers.get('access-control-allow-origin'), null);
  } finally {
    cors.server.server.close();
    cors.server.server.closeAllConnections();
  }
});

test('bench serve: a small random-dataset run completes with vLLM metrics and /health probes', async () => {
  const { runServeBenchmark } = await import('../../src/entrypoints/cli/bench_serve.js');
  const r = await runServeBenchmark({
    baseUrl: s.base, endpoint: '/v1/completions', model: MODEL, tokenizer: s.engine.tokenizer, numPrompts: 8,
    randomInputLen: 24, randomOutputLen: 6, requestRate: 50, maxConcurrency: 4, ignoreEos: true, seed: 0,
    percentiles: [50, 99], apiKey: KEY, healthIntervalMs: 20, log: () => {},
  });
  assert.deepEqual(r.errors, []);
  assert.equal(r.metrics.completed, 8);
  assert.equal(r.metrics.totalOutput, 48, '--ignore-eos gives exactly the output length');
  assert.ok(Math.abs(r.metrics.totalInput - 8 * 24) <= 8, `prompts are about 24 tokens (${r.metrics.totalInput / 8})`);
  assert.ok(r.metrics.ttft.mean > 0 && r.metrics.tpot.mean > 0 && r.metrics.e2el.percentiles['99'] >= r.metrics.e2el.percentiles['50']);
  assert.ok(r.health.count > 0 && Number.isFinite(r.health.p99Ms));
});
