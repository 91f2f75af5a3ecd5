// Security of the OpenAI-compatible server: API keys compared in constant time,
// no route that reads a file named by a request, request body and header size
// limits, and logs that never show the API key or (with --disable-log-requests)
// the prompt.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServe } from '../soak/server_process.js';
import { attachServer, MODEL, startServer, type TestServer } from './helpers.js';

const KEY = 'sk-reliability-0123456789abcdef';
const OTHER_KEY = 'second-key';
const LIMIT = 64 * 1024;
let s: TestServer;
let trusting: TestServer;

before(async () => {
  s = await startServer({ apiKeys: [KEY, OTHER_KEY], maxBodyBytes: LIMIT });
  trusting = await attachServer(s.engine, { trustRequestChatTemplate: true, maxBodyBytes: LIMIT });
});

after(async () => {
  trusting.server.server.close();
  trusting.server.server.closeAllConnections();
  await s.server.close();
});

const json = { 'content-type': 'application/json' };

/** Raw HTTP over a socket (for requests fetch will not send); resolves with the status line's code and whether the server closed. */
function raw(base: string, head: string, body: Buffer | string = '', opts: { waitClose?: boolean } = {}): Promise<{ status: number; text: string; closed: boolean }> {
  const { port } = new URL(base);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(port), '127.0.0.1');
    let text = '';
    let closed = false;
    const done = () => resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0), text, closed });
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      text += d;
      if (!opts.waitClose && /\r\n\r\n/.test(text)) setTimeout(done, 50);
    });
    sock.on('close', () => {
      closed = true;
      done();
    });
    sock.on('error', (e) => (text ? done() : reject(e)));
    sock.write(head);
    if (body.length > 0) sock.write(body);
  });
}

test('API keys: compared in constant time over SHA-256 digests; wrong keys of every length get 401', async () => {
  const src = readFileSync(new URL('../../src/entrypoints/openai/server_access.ts', import.meta.url), 'utf8');
  const fn = /\n  authorized\([\s\S]*?\n  }\n/.exec(src)?.[0];
  assert.ok(fn, 'ApiKeys.authorized() is where keys are checked');
  assert.match(src, /import \{[^}]*\btimingSafeEqual\b[^}]*\} from 'node:crypto'/);
  assert.match(src, /createHash\('sha256'\)/, 'keys are hashed to fixed-length digests');
  assert.match(fn, /timingSafeEqual\(\s*\w+\s*,\s*digest\s*\)/, 'digests are compared with crypto.timingSafeEqual');
  assert.match(fn, /const digest = sha256\(token\)/);
  assert.match(fn, /for \(const key of this\.keyDigests\)/, 'every key is compared (no early exit on a match)');
  assert.doesNotMatch(fn, /token\s*[!=]==\s*(key|this)|\.includes\(token\)|\.indexOf\(token\)|startsWith\(key/, 'no plain string comparison of the key');

  const get = (authorization?: string) => fetch(`${s.base}/v1/models`, { headers: authorization === undefined ? {} : { authorization } });
  const wrong = [
    '', 'x', KEY.slice(0, -1), KEY.slice(0, 8), `${KEY}x`, KEY.toUpperCase(), KEY.replace(/.$/, '0'), KEY + KEY,
    'k'.repeat(KEY.length), 'k'.repeat(4096), 'cl\u00e9-\u00ff', ` ${OTHER_KEY}`, `${OTHER_KEY}\t${OTHER_KEY}`,
  ];
  for (const k of wrong) {
    const res = await get(`Bearer ${k}`);
    assert.equal(res.status, 401, `key of length ${k.length}`);
    const err = ((await res.json()) as { error: { code: number; type: string } }).error;
    assert.deepEqual([err.code, err.type], [401, 'AuthenticationError']);
  }
  for (const header of [undefined, KEY, `bearer ${KEY}`, `Basic ${KEY}`, `Bearer  ${KEY}`, `Token ${KEY}`]) {
    assert.equal((await get(header)).status, 401, `Authorization: ${header}`);
  }
  assert.equal((await get(`Bearer ${KEY}`)).status, 200);
  assert.equal((await get(`Bearer ${OTHER_KEY}`)).status, 200, 'each configured key works');
  assert.equal((await fetch(`${s.base}/health`)).status, 200, '/health needs no key');
});

test('no route reads a file named by a request: a chat_template path is a template string, never a file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vllm-ts-tpl-'));
  try {
    const path = join(dir, 'template.jinja');
    writeFileSync(path, 'LEAKED-FROM-DISK {{ messages[0].content }}');
    const messages = [{ role: 'user', content: 'hi' }];
    const tok = s.engine.tokenizer;

    // Without --trust-request-chat-template: refused.
    const refused = await fetch(`${s.base}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...json, authorization: `Bearer ${KEY}` },
      body: JSON.stringify({ messages, chat_template: path, max_tokens: 1 }),
    });
    assert.equal(refused.status, 400);
    assert.equal(((await refused.json()) as { error: { param: string } }).error.param, 'chat_template');

    // With it: the path is rendered as (literal) template text.
    for (const tpl of [path, `file://${path}`, '../../../../etc/passwd']) {
      const res = await fetch(`${trusting.base}/tokenize`, { method: 'POST', headers: json, body: JSON.stringify({ messages, chat_template: tpl }) });
      assert.equal(res.status, 200);
      const rendered = tok.decode(((await res.json()) as { tokens: number[] }).tokens);
      assert.equal(rendered, tpl, 'the template is the string itself');
      assert.ok(!rendered.includes('LEAKED') && !rendered.includes('root:'));
    }
    const chat = await fetch(`${trusting.base}/v1/chat/completions`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ messages, chat_template: path, max_tokens: 1, temperature: 0 }),
    });
    assert.equal(chat.status, 200);
    const usage = ((await chat.json()) as { usage: { prompt_tokens: number } }).usage;
    assert.equal(usage.prompt_tokens, tok.encode(path, { addSpecialTokens: false }).length);

    // Other path-shaped inputs: a model "name" and URL paths.
    const model = await fetch(`${s.base}/v1/completions`, {
      method: 'POST',
      headers: { ...json, authorization: `Bearer ${KEY}` },
      body: JSON.stringify({ model: '/etc/passwd', prompt: 'x' }),
    });
    assert.equal(model.status, 404);
    for (const p of ['/static/playground.html', '/../package.json', '/%2e%2e/package.json', '/models/tiny-llama-kjv/config.json', '//etc/passwd']) {
      const res = await raw(s.base, `GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, '', { waitClose: true });
      assert.equal(res.status, 404, `GET ${p}`);
      assert.ok(!res.text.includes('"version"') && !res.text.includes('LlamaForCausalLM'));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  // The server's own file reads take fixed paths, never a request's.
  for (const file of ['api_server.ts', 'serving_playground.ts', 'serving_chat.ts', 'serving_completion.ts', 'serving_engine.ts', 'serving_tokenization.ts', 'http.ts']) {
    const src = readFileSync(new URL(`../../src/entrypoints/openai/${file}`, import.meta.url), 'utf8');
    const calls = [...src.matchAll(/\b(readFileSync|readFile|createReadStream|openSync|readdirSync)\(/g)].length;
    const fixed = [...src.matchAll(/\b(readFileSync|readFile|createReadStream|openSync|readdirSync)\((new URL\('[^']+', import\.meta\.url\)|PAGE_URL)[,)]/g)].length;
    assert.equal(fixed, calls, `${file}: every file read takes a fixed path`);
  }
});

test('body limits: 413 on a declared or streamed body over the limit; a body exactly at the limit is read', async () => {
  const auth = `Authorization: Bearer ${KEY}\r\n`;
  // Declared too large: refused from the headers alone, before any byte of the body.
  const declared = await raw(s.base, `POST /v1/completions HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: ${100 * 1024 * 1024}\r\n\r\n`);
  assert.equal(declared.status, 413);
  assert.match(declared.text, /connection: close/i);

  // Chunked, no length: refused once the bytes read pass the limit.
  const chunk = Buffer.alloc(16 * 1024, 'a');
  const chunked = Buffer.concat(Array.from({ length: 6 }, () => Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')])));
  const streamed = await raw(s.base, `POST /v1/completions HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`, chunked, { waitClose: true });
  assert.equal(streamed.status, 413);
  assert.ok(streamed.closed, 'the connection is closed after a 413');

  const body = (size: number) => {
    const core = JSON.stringify({ prompt: 'In the beginning', max_tokens: 1, temperature: 0 });
    return core.slice(0, -1) + ' '.repeat(size - core.length) + '}';
  };
  const post = (b: string) => fetch(`${s.base}/v1/completions`, { method: 'POST', headers: { ...json, authorization: `Bearer ${KEY}` }, body: b });
  assert.equal(Buffer.byteLength(body(LIMIT)), LIMIT);
  assert.equal((await post(body(LIMIT))).status, 200, 'exactly at the limit is accepted');
  assert.equal((await post(body(LIMIT + 1))).status, 413, 'one byte over is refused');
  // Multi-byte characters count as bytes, not characters.
  const wide = JSON.stringify({ prompt: '€'.repeat(LIMIT / 3 + 10), max_tokens: 1 });
  assert.ok(wide.length < LIMIT && Buffer.byteLength(wide) > LIMIT);
  assert.equal((await post(wide)).status, 413);
  assert.equal((await fetch(`${s.base}/health`)).status, 200);
});

test('header limits: a header, many headers or a URL past 16 KiB get 431; slow clients are timed out', async () => {
  const big = 'a'.repeat(20_000);
  assert.equal((await raw(s.base, `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${big}\r\n\r\n`)).status, 431);
  const many = Array.from({ length: 400 }, (_, i) => `X-H${i}: ${'b'.repeat(50)}\r\n`).join('');
  assert.equal((await raw(s.base, `GET /health HTTP/1.1\r\nHost: x\r\n${many}\r\n`)).status, 431);
  assert.equal((await raw(s.base, `GET /health?q=${big} HTTP/1.1\r\nHost: x\r\n\r\n`)).status, 431);
  // node:http's slowloris guards stay on: headers within 60 s, the whole request within 5 min.
  const srv = s.server.server;
  assert.ok(srv.headersTimeout > 0 && srv.headersTimeout <= 60_000, `headersTimeout ${srv.headersTimeout}`);
  assert.ok(srv.requestTimeout > 0 && srv.requestTimeout <= 300_000, `requestTimeout ${srv.requestTimeout}`);
  assert.equal((await fetch(`${s.base}/health`)).status, 200);
});

test('logs never contain the API key, nor the prompt with --disable-log-requests', { timeout: 120_000 }, async () => {
  const secretKey = 'sk-do-not-log-5f3a9c1e';
  const marker = 'Quetzalcoatl zebra marker';
  const args = ['--device', 'cpu', '--num-threads', '1', '--max-model-len', '512', '--kv-cache-memory-bytes', String(8 << 20), '--api-key', secretKey];
  const traffic = async (base: string) => {
    const h = { ...json, authorization: `Bearer ${secretKey}` };
    const send = (path: string, body: object, headers = h) => fetch(`${base}${path}`, { method: 'POST', headers, body: JSON.stringify(body) }).then((r) => r.text());
    await send('/v1/completions', { prompt: marker, max_tokens: 3 });
    await send('/v1/completions', { prompt: marker, max_tokens: 3, stream: true });
    await send('/v1/chat/completions', { messages: [{ role: 'user', content: marker }], max_tokens: 3 });
    await send('/v1/completions', { prompt: marker, temperature: 99 });
    await send('/v1/completions', { prompt: marker, max_tokens: 3 }, { ...json, authorization: `Bearer ${secretKey}-wrong` });
    await send('/tokenize', { prompt: marker });
  };

  const quiet = await startServe(MODEL, [...args, '--disable-log-requests']);
  let log: string;
  try {
    await traffic(quiet.base);
  } finally {
    assert.equal(await quiet.stop(), 0);
    log = quiet.stderr();
  }
  assert.match(log, /Application startup complete/, 'the log was captured');
  assert.ok(!log.includes(secretKey), 'the API key is never logged');
  assert.ok(!log.includes('Quetzalcoatl'), `the prompt is not logged with --disable-log-requests:\n${log}`);

  // Control: without the flag the same capture does show prompts, and still never the key.
  // (request logging is off by default, as in vLLM: --enable-log-requests turns it on)
  const chatty = await startServe(MODEL, [...args, '--enable-log-requests']);
  try {
    await traffic(chatty.base);
  } finally {
    await chatty.stop();
  }
  assert.ok(chatty.stderr().includes('Quetzalcoatl'), 'requests are logged with --enable-log-requests');
  assert.ok(!chatty.stderr().includes(secretKey), 'the API key is never logged');
});
