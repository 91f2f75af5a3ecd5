// vLLM's extra routes and server flags over loopback: --root-path, X-Request-Id
// (--enable-request-id-headers), /tokenizer_info, /tokenize with tools,
// /invocations, /load (--enable-server-load-tracking), --uds, /openapi.json (from
// the zod schemas that validate requests) and /docs, and the flags through the CLI.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { requestJsonSchema } from '../../src/entrypoints/openai/openapi.js';
import { spawnServe } from '../soak/server_process.js';
import { attachServer, MODEL, startServer, type TestServer, waitFor } from './helpers.js';

const KEY = 'surface-key';
let s: TestServer; // defaults (vLLM's: every optional feature off)
let on: TestServer; // the same engine with the optional features on
const dir = mkdtempSync(join(tmpdir(), 'vllm-ts-uds-'));

before(async () => {
  s = await startServer();
  on = await attachServer(s.engine, {
    rootPath: '/proxy/llm/',
    enableRequestIdHeaders: true,
    enableTokenizerInfoEndpoint: true,
    enableServerLoadTracking: true,
    trustRequestChatTemplate: true,
    apiKeys: [KEY],
  });
});

after(async () => {
  on.server.server.close();
  await s.server.close();
  rmSync(dir, { recursive: true, force: true });
});

type Json = any;
const auth = { authorization: `Bearer ${KEY}` };

async function call(base: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: Json }> {
  const r = await fetch(base + path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let parsed: Json = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: r.status, headers: r.headers, body: parsed };
}

test('--root-path: the official client works under the prefix; the bare paths still answer', async () => {
  const client = new OpenAI({ baseURL: `${on.base}/proxy/llm/v1`, apiKey: KEY, maxRetries: 0 });
  const models = await client.models.list();
  assert.equal(models.data[0].id, MODEL);
  const c = await client.completions.create({ model: MODEL, prompt: 'In the beginning', max_tokens: 3, temperature: 0 });
  const bare = await call(on.base, '/v1/completions', { prompt: 'In the beginning', max_tokens: 3, temperature: 0 }, auth);
  assert.equal(bare.body.choices[0].text, c.choices[0].text);
  assert.equal((await call(on.base, '/proxy/llm/health')).status, 200);
  assert.equal((await call(on.base, '/proxy/llmx/health')).status, 404, 'only whole path segments are the prefix');
});

test('X-Request-Id: echoed (or made) with --enable-request-id-headers; the response id is based on it', async () => {
  const r = await call(on.base, '/v1/completions', { prompt: 'x', max_tokens: 1 }, { ...auth, 'x-request-id': 'abc-123' });
  assert.equal(r.headers.get('x-request-id'), 'abc-123');
  assert.equal(r.body.id, 'cmpl-abc-123');
  const made = await call(on.base, '/health');
  assert.match(made.headers.get('x-request-id') ?? '', /^[0-9a-f]{32}$/, 'every response, every route');
  const plain = await call(s.base, '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], max_tokens: 1 }, { 'x-request-id': 'zz9' });
  assert.equal(plain.headers.get('x-request-id'), null, 'no header without the flag');
  assert.equal(plain.body.id, 'chatcmpl-zz9', 'but the id is still based on it, as vLLM');
  const long = await call(s.base, '/v1/completions', { prompt: 'x', max_tokens: 1 }, { 'x-request-id': 'a'.repeat(300) });
  assert.equal(long.status, 400);
});

test('/tokenizer_info only with --enable-tokenizer-info-endpoint: the tokenizer config with its chat template', async () => {
  assert.equal((await call(s.base, '/tokenizer_info')).status, 404);
  const info = await call(on.base, '/tokenizer_info');
  assert.equal(info.status, 200);
  const tok = s.engine.tokenizer;
  assert.equal(info.body.tokenizer_class, 'PreTrainedTokenizerFast');
  assert.equal(info.body.chat_template, tok.chatTemplate);
  assert.equal(info.body.eos_token, '<|endoftext|>');
  assert.equal(info.body.added_tokens_decoder['0'], '<|endoftext|>', 'AddedToken objects read as their text');
  assert.equal(info.body.vocab_file, undefined);
});

test('/tokenize renders tools into the chat template, as vLLM does', async () => {
  const template = "{% if tools %}{% for t in tools %}[tool {{ t.function.name }}]{% endfor %}{% endif %}{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}";
  const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } }];
  const messages = [{ role: 'user', content: 'rain?' }];
  const r = await call(on.base, '/tokenize', { messages, tools, chat_template: template, add_generation_prompt: false });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const expected = s.engine.tokenizer.encode('[tool get_weather]user: rain?\n', { addSpecialTokens: false });
  assert.deepEqual(r.body.tokens, expected);
  assert.equal(r.body.count, expected.length);
  const without = await call(on.base, '/tokenize', { messages, chat_template: template, add_generation_prompt: false });
  assert.equal(without.body.count, s.engine.tokenizer.encode('user: rain?\n', { addSpecialTokens: false }).length);
});

test('/invocations routes chat, completion and embedding bodies; anything else is a 400', async () => {
  const chatBody = { messages: [{ role: 'user', content: 'In the beginning' }], max_tokens: 4, temperature: 0 };
  const viaChat = await call(s.base, '/v1/chat/completions', chatBody);
  const chat = await call(s.base, '/invocations', chatBody);
  assert.equal(chat.body.object, 'chat.completion');
  assert.equal(chat.body.choices[0].message.content, viaChat.body.choices[0].message.content);
  const cmpl = await call(s.base, '/invocations', { prompt: 'In the beginning', max_tokens: 4, temperature: 0 });
  assert.equal(cmpl.body.object, 'text_completion');
  const emb = await call(s.base, '/invocations', { input: 'In the beginning' });
  assert.equal(emb.body.object, 'list');
  assert.equal(emb.body.data[0].embedding.length, s.engine.modelConfig.hiddenSize);
  const none = await call(s.base, '/invocations', { text: 'hi' });
  assert.equal(none.status, 400);
  assert.match(none.body.error.message, /Cannot find suitable handler for request/);
  assert.equal((await call(on.base, '/invocations', cmpl.body && { prompt: 'x', max_tokens: 1 })).status, 401, 'it serves inference, so it needs the key');
});

test('/load counts running requests with --enable-server-load-tracking, and stays 0 without', async () => {
  assert.deepEqual((await call(on.base, '/load')).body, { server_load: 0 });
  const res = await fetch(`${on.base}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...auth },
    body: JSON.stringify({ prompt: 'In the beginning', max_tokens: 60, ignore_eos: true, stream: true }),
  });
  const reader = res.body!.getReader();
  await reader.read();
  assert.deepEqual((await call(on.base, '/load')).body, { server_load: 1 }, 'the stream is being answered');
  assert.deepEqual((await call(s.base, '/load')).body, { server_load: 0 }, 'not tracked without the flag');
  while (!(await reader.read()).done);
  assert.ok(await waitFor(async () => (await call(on.base, '/load')).body.server_load === 0));
});

test('/openapi.json is generated from the request schemas; /docs renders it with nothing from outside', async () => {
  const doc = (await call(on.base, '/proxy/llm/openapi.json')).body;
  assert.equal(doc.openapi, '3.1.0');
  assert.deepEqual(doc.servers, [{ url: '/proxy/llm' }]);
  assert.deepEqual(doc.components.schemas.CompletionRequest, requestJsonSchema('CompletionRequest'));
  const cmpl = doc.components.schemas.CompletionRequest.properties;
  assert.deepEqual(cmpl.truncation_side.anyOf[0].enum, ['left', 'right']);
  assert.deepEqual(doc.components.schemas.ChatCompletionRequest.required, ['messages']);
  for (const path of ['/v1/completions', '/v1/chat/completions', '/v1/embeddings', '/tokenize', '/detokenize', '/invocations', '/load', '/tokenizer_info', '/health', '/metrics']) {
    assert.ok(doc.paths[path], `${path} is documented`);
  }
  assert.equal(doc.paths['/v1/completions'].post.requestBody.content['application/json'].schema.$ref, '#/components/schemas/CompletionRequest');
  assert.deepEqual(doc.paths['/v1/models/{model}'].get.parameters.map((p: Json) => [p.name, p.in]), [['model', 'path']]);
  assert.deepEqual(doc.paths['/v1/completions'].post.security, [{ bearer: [] }]);
  assert.equal((await call(s.base, '/openapi.json')).body.paths['/tokenizer_info'], undefined, 'only the routes this server has');

  const page = await fetch(`${on.base}/proxy/llm/docs`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /text\/html/);
  assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
  const html = await page.text();
  assert.ok(html.includes("fetch('openapi.json')"), 'relative, so that it works under --root-path');
  assert.ok(!/(src|href)=["']?https?:/.test(html), 'no CDN');
  const off = await attachServer(s.engine, { disableDocs: true });
  try {
    assert.equal((await call(off.base, '/openapi.json')).status, 404);
    assert.equal((await call(off.base, '/docs')).status, 404);
  } finally {
    off.server.server.close();
  }
});

/** A request over a Unix domain socket. */
function overSocket(socketPath: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

test('vllm-ts serve --uds with the surface flags: served over the socket, flags in effect', { timeout: 120_000 }, async () => {
  const socketPath = join(dir, 'serve.sock');
  const child = spawnServe(MODEL, [
    '--uds', socketPath, '--device', 'cpu', '--num-threads', '1', '--max-model-len', '256', '--kv-cache-memory-bytes', String(4 << 20),
    '--max-logprobs', '-1', '--enable-server-load-tracking', '--enable-tokenizer-info-endpoint', '--root-path', '/r',
    '--return-tokens-as-token-ids', '--disable-log-requests', '--disable-log-stats',
  ]);
  let log = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (log += d));
  try {
    assert.ok(await waitFor(() => log.includes('Application startup complete') || child.exitCode !== null, 90_000), log);
    assert.match(log, /unix socket/);
    assert.match(log, /Available routes: GET [^;]*\/load[^;]*\/tokenizer_info[^;]*; POST [^;]*\/invocations/, 'the startup log lists the routes this server has');
    assert.equal((await overSocket(socketPath, 'GET', '/r/health')).status, 200);
    assert.equal(JSON.parse((await overSocket(socketPath, 'GET', '/load')).body).server_load, 0);
    assert.equal((await overSocket(socketPath, 'GET', '/tokenizer_info')).status, 200);
    const r = await overSocket(socketPath, 'POST', '/v1/completions', { prompt: 'In the beginning', max_tokens: 1, logprobs: 100 });
    assert.equal(r.status, 200, r.body);
    assert.match(JSON.parse(r.body).choices[0].logprobs.tokens[0], /^token_id:\d+$/);
  } finally {
    child.kill('SIGTERM');
    await new Promise((res) => (child.exitCode !== null ? res(null) : child.once('exit', res)));
  }
});
