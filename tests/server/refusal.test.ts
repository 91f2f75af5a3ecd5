// Refuse before work: prompts that cannot fit max_model_len are refused from their
// length, fast, without being logged, while /health stays responsive; prompts that
// could fit are tokenized exactly (long ones off the event loop).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { INLINE_ENCODE_CHARS, INLINE_PARSE_BYTES, TokenizerPool } from '../../src/tokenizer/tokenizer_pool.js';
import { MODEL, startServer, type TestServer } from './helpers.js';

const lines: string[] = [];
const logger = { debug() {}, info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m), error: (m: string) => lines.push(m) };
let s: TestServer;

before(async () => {
  // Request logging on, so that a refused request would show up in the log if it were logged.
  s = await startServer({ logger, logRequests: true, maxBodyBytes: 32 << 20 });
});
after(async () => {
  await s.server.close();
});

const TEN_MIB = 'In the beginning God created the heaven and the earth. '.repeat(Math.ceil((10 << 20) / 56)).slice(0, 10 << 20);

async function post(path: string, body: unknown): Promise<{ status: number; json: { error?: { message: string; param: string | null; code: number } } }> {
  const res = await fetch(s.base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as { error?: { message: string; param: string | null; code: number } } };
}

test('a 10 MiB prompt is refused from its length in well under 200 ms, and the log stays small', async () => {
  const before = lines.join('\n').length;
  const body = JSON.stringify({ prompt: TEN_MIB, max_tokens: 4 });
  const times: number[] = [];
  const cpus: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const res = await fetch(`${s.base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const json = (await res.json()) as { error: { message: string; param: string } };
    times.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpus.push((c.user + c.system) / 1000);
    assert.equal(res.status, 400);
    assert.equal(json.error.param, 'prompt');
    assert.match(json.error.message, /maximum context length is 512 tokens\. However, your request has at least \d+ input tokens/);
  }
  // NOTE: the bound, not the measured time, is what makes this fast (tokenizing
  // 10 MiB would take the tokenizer over ten seconds). What a refusal costs is read
  // as CPU time (every thread of this process, the client's sending included), which
  // a loaded shared machine does not inflate as it does wall time; the wall-time
  // check is loose for the same reason.
  const show = (xs: number[]) => xs.map((t) => t.toFixed(0)).join(', ');
  assert.ok(Math.min(...cpus) < 200, `refusals took ${show(cpus)} ms of CPU (wall ${show(times)} ms)`);
  assert.ok(Math.min(...times) < 2000, `refused in ${show(times)} ms`);
  const logged = lines.join('\n').length - before;
  assert.ok(logged < 2000, `${logged} characters logged for three refusals`);
  assert.ok(!lines.some((l) => l.includes('Received request')), 'a refused request is never logged as received');
});

test('chat, /tokenize and /v1/embeddings refuse a 10 MiB input the same way', async () => {
  const chat = await post('/v1/chat/completions', { messages: [{ role: 'user', content: TEN_MIB }], max_tokens: 2 });
  assert.equal(chat.status, 400);
  assert.equal(chat.json.error!.param, 'messages.0.content');
  assert.match(chat.json.error!.message, /maximum context length/);
  const tok = await post('/tokenize', { prompt: TEN_MIB });
  assert.equal(tok.status, 400);
  assert.match(tok.json.error!.message, /maximum context length/);
  const emb = await post('/v1/embeddings', { input: ['short', TEN_MIB] });
  assert.equal(emb.status, 400);
  assert.equal(emb.json.error!.param, 'input.1');
});

test('a prompt that could fit by length but has too many tokens is refused with its exact count', async () => {
  const text = 'a b '.repeat(1200); // 4800 characters, ~2400 tokens: under the length bound, over 512 tokens
  assert.ok(text.length <= 512 * s.engine.tokenizer.maxCharsPerToken);
  const exact = s.engine.tokenizer.encode(text).length;
  const r = await post('/v1/completions', { prompt: text, max_tokens: 1 });
  assert.equal(r.status, 400);
  assert.match(r.json.error!.message, new RegExp(`your request has ${exact} input tokens`));
});

/** Threads that burn CPU until terminated (the contention an attack's threads add, without the attack). */
function burners(n: number): Worker[] {
  return Array.from({ length: n }, () => new Worker('for (;;) {}', { eval: true }));
}

/** Sorted latencies of `n` /health probes 5 ms apart. */
async function healthLatencies(n: number): Promise<number[]> {
  const lat: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await (await fetch(`${s.base}/health`)).arrayBuffer();
    lat.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 5));
  }
  return lat.sort((a, b) => a - b);
}

test('/health p99 stays under 50 ms while 10 MiB prompts are refused', async () => {
  // The hostile client runs in its own thread, so that only the server shares this event loop with the probe.
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    const body = JSON.stringify({ prompt: 'In the beginning. '.repeat(Math.ceil((10 << 20) / 18)), max_tokens: 4 });
    (async () => {
      const statuses = [];
      const one = async () => {
        const r = await fetch(workerData.base + '/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        await r.text();
        statuses.push(r.status);
      };
      for (let i = 0; i < 6; i++) await Promise.all([one(), one()]);
      parentPort.postMessage(statuses);
    })();`;
  const attacker = new Worker(code, { eval: true, workerData: { base: s.base } });
  const done = new Promise<number[]>((resolve, reject) => {
    attacker.once('message', resolve);
    attacker.once('error', reject);
  });
  let finished = false;
  void done.then(() => (finished = true), () => (finished = true));
  const lat: number[] = [];
  // The reference: /health while two threads burn CPU (as the attacker's and the
  // parsing thread do during the attack) but no request reaches the server.
  const burn = burners(2);
  const baseline = await healthLatencies(60);
  await Promise.all(burn.map((w) => w.terminate()));
  while (!finished) {
    const t0 = performance.now();
    const res = await fetch(`${s.base}/health`);
    await res.arrayBuffer();
    lat.push(performance.now() - t0);
    assert.equal(res.status, 200);
    await new Promise((r) => setTimeout(r, 5));
  }
  const statuses = await done;
  await attacker.terminate();
  assert.deepEqual(new Set(statuses), new Set([400]));
  lat.sort((a, b) => a - b);
  const p99 = lat[Math.min(lat.length - 1, Math.floor(lat.length * 0.99))];
  assert.ok(lat.length >= 10, `${lat.length} probes`);
  // NOTE: 50 ms, or three times what /health takes on this machine right now under
  // the same thread contention without the attack, when that is more (a loaded
  // shared machine delays every probe whatever the server does).
  const base99 = baseline[Math.floor(baseline.length * 0.99)];
  const limit = Math.max(50, 3 * base99);
  assert.ok(p99 < limit, `/health p99 ${p99.toFixed(1)} ms over ${lat.length} probes (max ${lat.at(-1)!.toFixed(1)} ms; limit ${limit.toFixed(1)} ms, idle p99 ${base99.toFixed(1)} ms)`);
  // The engine still answers.
  const ok = await post('/v1/completions', { prompt: 'In the beginning', max_tokens: 2 });
  assert.equal(ok.status, 200);
});

test('the tokenizer pool encodes long texts off the thread exactly as the tokenizer does', async () => {
  const tok = Tokenizer.fromPretrained(MODEL);
  const pool = new TokenizerPool(tok, MODEL, 1);
  try {
    const text = 'And God said, Let there be light: and there was light. '.repeat(200);
    assert.ok(text.length > INLINE_ENCODE_CHARS);
    assert.deepEqual(await pool.encode(text, true), tok.encode(text, { addSpecialTokens: true }));
    assert.deepEqual(await pool.encode(text, false), tok.encode(text, { addSpecialTokens: false }));
    const big = Buffer.from(JSON.stringify({ prompt: text.repeat(30), n: [1, 2] }));
    assert.ok(big.length > INLINE_PARSE_BYTES);
    const expected: unknown = JSON.parse(big.toString('utf8'));
    const broken = Buffer.concat([big, Buffer.from('}')]);
    assert.deepEqual(await pool.parseJson(big), expected); // (big's memory moves to the thread)
    await assert.rejects(pool.parseJson(broken), { name: 'SyntaxError' });
    // A string longer than the caller's limit is refused on the thread, with its path.
    const long = Buffer.from(JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(300_000) }] }));
    await assert.rejects(pool.parseJson(long, 1000), { name: 'StringTooLongError', path: 'messages.0.content', length: 300_000 });
  } finally {
    pool.close();
  }
});
