// use_beam_search over HTTP on the tiny model: the n choices are the offline beam
// search's beams, best first, the same beside other traffic; streaming is refused;
// the beams' shared prefixes show as prefix-cache hits in /metrics; the openai client
// sends use_beam_search in the body.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { LLM } from '../../src/index.js';
import { metric, MODEL, SMALL_ARGS, startServer, type TestServer } from './helpers.js';

let s: TestServer;
let llm: LLM;
const PROMPT = 'And God said, Let there be light: and there was light. And God saw the light,';

before(async () => {
  s = await startServer();
  llm = await LLM.create({ ...SMALL_ARGS, useTqdm: false });
});
after(async () => {
  await s.server.close();
  s.engine.shutdown();
  llm.close();
});

type Choice = { index: number; text: string; token_ids: number[] | null; finish_reason: string; stop_reason: unknown; message?: { content: string } };

async function post(path: string, body: Record<string, unknown>) {
  const res = await fetch(s.base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as { choices: Choice[]; usage: { completion_tokens: number }; error?: { message: string; param: string } } };
}

const beamBody = { model: MODEL, prompt: PROMPT, n: 3, max_tokens: 8, use_beam_search: true, include_stop_str_in_output: true, return_token_ids: true };

test('completions: n choices, best first, equal to the offline beam search; the same beside other traffic', async () => {
  const [offline] = await llm.beamSearch(PROMPT, { beamWidth: 3, maxTokens: 8 });
  const promptLen = llm.tokenizer.encode(PROMPT).length;
  const alone = await post('/v1/completions', beamBody);
  assert.equal(alone.status, 200);
  assert.equal(alone.json.choices.length, 3);
  assert.deepEqual(alone.json.choices.map((c) => c.index), [0, 1, 2]);
  assert.deepEqual(alone.json.choices.map((c) => c.token_ids), offline.sequences.map((q) => q.tokens.slice(promptLen)));
  assert.equal(new Set(alone.json.choices.map((c) => c.text)).size, 3, 'distinct beams');
  assert.equal(alone.json.usage.completion_tokens, alone.json.choices.reduce((a, c) => a + c.token_ids!.length, 0));
  // The same request among sampled ones.
  const noise = [1, 2, 3, 4].map((i) => post('/v1/completions', { prompt: `Verse ${i}: and the`, max_tokens: 12, temperature: 1, seed: i }));
  const [beside] = await Promise.all([post('/v1/completions', beamBody), ...noise]);
  assert.deepEqual(beside.json.choices, alone.json.choices);
});

test('chat completions run beam search too, and streaming with it is a clear 400', async () => {
  const messages = [{ role: 'user', content: 'Who made the light?' }];
  const r = await post('/v1/chat/completions', { messages, n: 2, max_tokens: 6, use_beam_search: true });
  assert.equal(r.status, 200);
  assert.equal(r.json.choices.length, 2);
  assert.notEqual(r.json.choices[0].message!.content, r.json.choices[1].message!.content);
  for (const path of ['/v1/chat/completions', '/v1/completions']) {
    const body = path.includes('chat') ? { messages, n: 2, use_beam_search: true, stream: true } : { prompt: PROMPT, n: 2, use_beam_search: true, stream: true };
    const bad = await post(path, body);
    assert.equal(bad.status, 400, path);
    assert.match(bad.json.error!.message, /Streaming is not supported with beam search/);
  }
  const wide = await post('/v1/completions', { prompt: PROMPT, n: 11, max_tokens: 2, use_beam_search: true });
  assert.equal(wide.status, 400, 'beam width 11 asks for 22 logprobs, above --max-logprobs 20');
});

test('a stop string ends a beam: no choice runs past it', async () => {
  const free = await post('/v1/completions', { ...beamBody, include_stop_str_in_output: false });
  const words = free.json.choices[0].text.trim().split(' ');
  const stop = ` ${words[Math.min(2, words.length - 1)]}`;
  const r = await post('/v1/completions', { ...beamBody, include_stop_str_in_output: false, stop: [stop] });
  assert.equal(r.status, 200);
  for (const c of r.json.choices) {
    assert.ok(!c.text.includes(stop), `${JSON.stringify(c.text)} holds ${JSON.stringify(stop)}`);
    if (c.stop_reason !== null) assert.equal(c.stop_reason, stop);
  }
  assert.ok(r.json.choices.some((c) => c.stop_reason === stop), 'some beam stopped at the stop string');
});

test('the beams share their prefix through the prefix cache: /metrics shows the hits', async () => {
  const before = { q: await metric(s.base, 'vllm:prefix_cache_queries_total'), h: await metric(s.base, 'vllm:prefix_cache_hits_total') };
  const prompt = `${PROMPT} ${PROMPT} ${PROMPT}`;
  const r = await post('/v1/completions', { prompt, n: 4, max_tokens: 6, use_beam_search: true });
  assert.equal(r.status, 200);
  const q = (await metric(s.base, 'vllm:prefix_cache_queries_total')) - (before.q || 0);
  const h = (await metric(s.base, 'vllm:prefix_cache_hits_total')) - (before.h || 0);
  assert.ok(q > 0 && h / q > 0.7, `prefix-cache hit rate during beam search ${h}/${q}`);
});

test('the openai client sends use_beam_search in the body (extra_body)', async () => {
  const client = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'none' });
  const extra = { use_beam_search: true, length_penalty: 1.0 } as Record<string, unknown>;
  const c = await client.completions.create({ model: MODEL, prompt: PROMPT, n: 3, max_tokens: 8, ...extra } as OpenAI.CompletionCreateParamsNonStreaming);
  const direct = await post('/v1/completions', { ...beamBody, include_stop_str_in_output: false, return_token_ids: false });
  assert.deepEqual(c.choices.map((x) => x.text), direct.json.choices.map((x) => x.text));
  const chat = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Who made the light?' }], n: 2, max_tokens: 6, ...extra } as OpenAI.ChatCompletionCreateParamsNonStreaming);
  assert.equal(chat.choices.length, 2);
});
