// Request fields as vLLM's pydantic models treat them: unsupported vLLM fields refused
// by name, unknown fields warned about once per request, lax numbers and booleans,
// the 64-bit seed bound, best_of; GET /v1/models/{id}; the access
// log and the request log.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { UNSUPPORTED_FIELDS } from '../../src/entrypoints/openai/request_fields.js';
import { MODEL, startServer, type TestServer } from './helpers.js';

const lines: { level: string; msg: string }[] = [];
const logger = {
  debug() {},
  info: (msg: string) => lines.push({ level: 'info', msg }),
  warn: (msg: string) => lines.push({ level: 'warn', msg }),
  error: (msg: string) => lines.push({ level: 'error', msg }),
};
let s: TestServer;

before(async () => {
  s = await startServer({ logger, servedModelNames: [MODEL, 'kjv'] });
});
after(async () => {
  await s.server.close();
});

type ErrorBody = { error: { message: string; param: string | null; code: number } };

async function post(path: string, body: unknown) {
  const res = await fetch(s.base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as ErrorBody & Record<string, unknown> };
}

const completion = { prompt: 'In the beginning', max_tokens: 2, temperature: 0 };
const chat = { messages: [{ role: 'user', content: 'Who art thou?' }], max_tokens: 2, temperature: 0 };

test('every field in the unsupported table is refused with a 400 naming it, on completions and chat', async () => {
  const setValue: Record<string, unknown> = {
    best_of: 2,
    logits_processors: ['my.module:Proc'],
    bad_words: ['smite'],
    prompt_embeds: 'AAAA',
    kv_transfer_params: { do_remote_decode: true },
    vllm_xargs: { a: 1 },
    mm_processor_kwargs: { a: 1 },
    thinking_token_budget: 10,
  };
  assert.deepEqual(Object.keys(setValue).sort(), Object.keys(UNSUPPORTED_FIELDS).sort(), 'the test covers the whole table');
  for (const [field, value] of Object.entries(setValue)) {
    for (const [path, base] of [['/v1/completions', completion], ['/v1/chat/completions', chat]] as const) {
      const r = await post(path, { ...base, [field]: value });
      assert.equal(r.status, 400, `${path} ${field}`);
      assert.equal(r.json.error.param, field, `${path} ${field}`);
    }
  }
  const r = await post('/v1/completions', { ...completion, best_of: 2 });
  assert.equal(r.json.error.message, 'vLLM V1 does not yet support best_of.');
});

test('unset or default values of unsupported fields are accepted', async () => {
  for (const extra of [{ best_of: 1 }, { best_of: null }, { use_beam_search: false }, { guided_json: null }, { structured_outputs: null },
    { response_format: { type: 'text' } }, { length_penalty: 1 }, { bad_words: [] }]) {
    const r = await post('/v1/completions', { ...completion, ...extra });
    assert.equal(r.status, 200, JSON.stringify(extra));
  }
});

test('unknown fields are warned about in one line per request, and ignored', async () => {
  lines.length = 0;
  const r = await post('/v1/completions', { ...completion, foo: 1, bar_baz: { a: [1] } });
  assert.equal(r.status, 200);
  const warnings = lines.filter((l) => l.level === 'warn');
  assert.equal(warnings.length, 1, JSON.stringify(warnings));
  assert.match(warnings[0].msg, /The following fields were present in the request but ignored: \{"foo", "bar_baz"\}/);
  // A flood of unknown names is one bounded line.
  lines.length = 0;
  const many = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`f${i}_${'x'.repeat(200)}`, i]));
  assert.equal((await post('/v1/chat/completions', { ...chat, ...many })).status, 200);
  const w = lines.filter((l) => l.level === 'warn');
  assert.equal(w.length, 1);
  assert.ok(w[0].msg.length < 2000, `${w[0].msg.length} characters`);
  assert.match(w[0].msg, /5000 in all/);
  // Known fields give no warning.
  lines.length = 0;
  assert.equal((await post('/v1/completions', completion)).status, 200);
  assert.equal(lines.filter((l) => l.level === 'warn').length, 0);
});

test('numbers and booleans sent as strings are read as pydantic reads them', async () => {
  const a = await post('/v1/completions', { prompt: 'In the beginning', max_tokens: '2', temperature: '0', logprobs: '1', echo: 'false' });
  assert.equal(a.status, 200, JSON.stringify(a.json));
  const usage = a.json.usage as { completion_tokens: number };
  assert.ok(usage.completion_tokens <= 2 && usage.completion_tokens > 0);
  const choice = (a.json.choices as { logprobs: { top_logprobs: Record<string, number>[] } }[])[0];
  assert.equal(Object.keys(choice.logprobs.top_logprobs[0]).length, 1);
  const b = await post('/v1/chat/completions', { ...chat, logprobs: 'true', top_logprobs: '2', stream: 'no' });
  assert.equal(b.status, 200, JSON.stringify(b.json));
  const content = (b.json.choices as { logprobs: { content: { top_logprobs: unknown[] }[] } }[])[0].logprobs.content;
  assert.equal(content[0].top_logprobs.length, 2);
  // What pydantic refuses stays refused: fractions for ints, words that are not booleans, numbers for strings.
  for (const [field, value] of [['max_tokens', '2.5'], ['max_tokens', 'two'], ['stream', 'maybe'], ['user', 5]] as const) {
    const r = await post('/v1/completions', { ...completion, [field]: value });
    assert.equal(r.status, 400, `${field}=${JSON.stringify(value)}`);
    assert.equal(r.json.error.param, field);
  }
});

test('seed: the 64-bit range is accepted, beyond it refused as vLLM does', async () => {
  for (const seed of [0, -1, 2 ** 53 + 2, 2 ** 62, -(2 ** 63)]) {
    assert.equal((await post('/v1/completions', { ...completion, seed })).status, 200, String(seed));
  }
  const big = await fetch(`${s.base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"prompt": "In the beginning", "max_tokens": 2, "seed": 9223372036854775808}',
  });
  const json = (await big.json()) as ErrorBody;
  assert.equal(big.status, 400);
  assert.equal(json.error.param, 'seed');
  assert.match(json.error.message, /less than or equal to 9223372036854775807/);
  const small = await post('/v1/completions', { ...completion, seed: -(2 ** 64) });
  assert.equal(small.status, 400);
  assert.match(small.json.error.message, /greater than or equal to -9223372036854775808/);
  // The same seed gives the same sample, whatever its size.
  const sample = async () => (await post('/v1/completions', { prompt: 'In the beginning', max_tokens: 6, temperature: 1, seed: 2 ** 60 })).json;
  const [x, y] = [await sample(), await sample()];
  assert.deepEqual((x.choices as { text: string }[])[0].text, (y.choices as { text: string }[])[0].text);
});

test('GET /v1/models/{id} answers the card of a served name (slashes included) and 404 otherwise, through the openai client', async () => {
  const client = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'none', maxRetries: 0 });
  const card = await client.models.retrieve(MODEL);
  assert.equal(card.id, MODEL);
  assert.equal(card.object, 'model');
  assert.equal((card as unknown as { max_model_len: number }).max_model_len, 512);
  assert.equal((await client.models.retrieve('kjv')).id, 'kjv');
  const list = await client.models.list();
  assert.deepEqual(list.data.map((m) => m.id), [MODEL, 'kjv']);
  await assert.rejects(client.models.retrieve('gpt-4'), (e: unknown) => e instanceof OpenAI.NotFoundError && /gpt-4/.test(e.message));
  const raw = await fetch(`${s.base}/v1/models/${encodeURIComponent(MODEL)}`);
  assert.equal(raw.status, 200);
  assert.equal(((await raw.json()) as { id: string }).id, MODEL);
  assert.equal((await fetch(`${s.base}/v1/models/%E0%A4%A`)).status, 400);
  assert.equal((await fetch(`${s.base}/v1/models/kjv`, { method: 'POST' })).status, 405);
});

test('one access-log line per request (method, path, status, time), refusals in one line without their body', async () => {
  lines.length = 0;
  await post('/v1/completions', completion);
  await post('/v1/completions', { ...completion, prompt: 'SECRET'.repeat(1000), best_of: 3 });
  await fetch(`${s.base}/nope`);
  const access = lines.filter((l) => l.msg.includes(' - "'));
  assert.equal(access.length, 3, JSON.stringify(access));
  assert.ok(access.every((l) => l.level === 'info'));
  assert.match(access[0].msg, /^127\.0\.0\.1:\d+ - "POST \/v1\/completions HTTP\/1\.1" 200 OK \d+\.\d ms$/);
  assert.match(access[1].msg, /"POST \/v1\/completions HTTP\/1\.1" 400 Bad Request/);
  assert.match(access[2].msg, /"GET \/nope HTTP\/1\.1" 404 Not Found/);
  assert.ok(!lines.some((l) => l.msg.includes('SECRET')), 'a refused prompt is never logged');
});

test('request logging is off by default; on, it logs accepted requests once with the prompt cut to --max-log-len', async () => {
  lines.length = 0;
  await post('/v1/completions', completion);
  assert.ok(!lines.some((l) => l.msg.includes('Received request')));
  const { attachServer } = await import('./helpers.js');
  const mine: string[] = [];
  const t = await attachServer(s.engine, { logRequests: true, maxLogLen: 10, logger: { ...logger, info: (m: string) => mine.push(m) } });
  try {
    const res = await fetch(`${t.base}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'In the beginning God created the heaven and the earth. And the earth was without form, and void', max_tokens: 2 }),
    });
    assert.equal(res.status, 200);
    const received = mine.filter((m) => m.includes('Received request'));
    assert.equal(received.length, 1);
    assert.match(received[0], /prompt: "In the beg"/);
    assert.match(received[0], /prompt_token_ids: \[(\d+, ){9}\d+, \.\.\. \(\d+ in all\)\]/);
    // A request refused by the engine's validation is not logged as received.
    mine.length = 0;
    const bad = await fetch(`${t.base}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'In the beginning', max_tokens: 100000 }),
    });
    assert.equal(bad.status, 400);
    assert.equal(mine.filter((m) => m.includes('Received request')).length, 0);
  } finally {
    t.server.server.close();
    t.server.server.closeAllConnections();
    t.server.tokenizerPool.close();
  }
});
