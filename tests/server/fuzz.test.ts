// Input fuzzing (bounded in time): random and mutated bodies to every route must
// never get a 5xx, crash the server or hang it; afterwards it still serves and the
// engine holds no request.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { seededRandom } from '../../src/metrics/serving_benchmark.js';
import { startServer, type TestServer, waitFor } from './helpers.js';

let s: TestServer;
before(async () => {
  s = await startServer({ maxBodyBytes: 64 * 1024 });
});
after(async () => {
  await s.server.close();
});

const rand = seededRandom(Number(process.env.FUZZ_SEED ?? 1234));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];

const JUNK: unknown[] = [
  null, true, false, 0, -1, 1, 0.5, -0.0001, 1e308, -1e308, 2 ** 53, 2 ** 31, 4096, 513, '', 'x', '1', 'null', '\u0000',
  '😀'.repeat(50), 'Ω≈ç√∫', '\ud800', [], [null], [1, 2, 3], [[1], ['a']], {}, { a: { b: { c: [1, { d: null }] } } }, ['a', 'b'],
  [{ type: 'text', text: 'hi' }], [{ type: 'image_url' }], 'a'.repeat(5000),
];

/** Fields with values that may run the engine stay small so that the test stays bounded. */
const FIELDS = [
  'model', 'prompt', 'messages', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'top_k', 'min_p', 'seed', 'stop',
  'stream', 'stream_options', 'logprobs', 'top_logprobs', 'echo', 'logit_bias', 'stop_token_ids', 'ignore_eos', 'min_tokens',
  'repetition_penalty', 'presence_penalty', 'frequency_penalty', 'prompt_logprobs', 'allowed_token_ids', 'add_generation_prompt',
  'continue_final_message', 'chat_template_kwargs', 'cache_salt', 'truncate_prompt_tokens', 'priority', 'request_id', 'tokens',
  'add_special_tokens', 'return_token_strs', 'skip_special_tokens', 'include_stop_str_in_output', 'response_format', 'tools', 'tool_choice',
];

function validBody(path: string): Record<string, unknown> {
  switch (path) {
    case '/v1/chat/completions':
      return { messages: [{ role: 'user', content: 'Who art thou?' }], max_tokens: 4 };
    case '/tokenize':
      return rand() < 0.5 ? { prompt: 'In the beginning' } : { messages: [{ role: 'user', content: 'hi' }] };
    case '/detokenize':
      return { tokens: [1, 2, 3] };
    default:
      return { prompt: 'In the beginning', max_tokens: 4 };
  }
}

function mutate(body: Record<string, unknown>): unknown {
  const r = rand();
  if (r < 0.05) return pick(JUNK);
  const out = { ...body };
  const k = 1 + Math.floor(rand() * 3);
  for (let i = 0; i < k; i++) {
    const field = pick(FIELDS);
    let v = pick(JUNK);
    // NOTE: a valid n or max_tokens can be large work; those two stay small here.
    if ((field === 'max_tokens' || field === 'max_completion_tokens') && typeof v === 'number' && v > 8 && v < 1e6) v = 8;
    out[field] = v;
  }
  if (rand() < 0.2) out.n = pick([0, 1, 2, -3, 'two', 1.5]);
  return out;
}

test('fuzzed bodies on every route: no 5xx, no crash, no hang', async () => {
  const routes = ['/v1/completions', '/v1/chat/completions', '/tokenize', '/detokenize', '/v1/models', '/health', '/metrics', '/version', '/nope'];
  const counts: Record<number, number> = {};
  const deadline = Date.now() + 4000;
  let sent = 0;
  while (Date.now() < deadline) {
    const batch = Array.from({ length: 8 }, async () => {
      const path = pick(routes);
      const method = rand() < 0.9 ? (['/v1/models', '/health', '/metrics', '/version'].includes(path) ? 'GET' : 'POST') : pick(['PUT', 'DELETE', 'GET', 'POST']);
      const body = method === 'GET' ? undefined : rand() < 0.1 ? pick(['{', '}{', '{"a":', '\u0000', 'null', '[]', '"s"']) : JSON.stringify(mutate(validBody(path)));
      const headers: Record<string, string> = { 'content-type': rand() < 0.95 ? 'application/json' : pick(['text/plain', 'application/xml', '']) };
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), 10_000);
      try {
        const res = await fetch(s.base + path, { method, headers, body, signal: ac.signal });
        const text = await res.text();
        counts[res.status] = (counts[res.status] ?? 0) + 1;
        assert.ok(res.status < 500, `${method} ${path} ${body?.slice(0, 200)} -> ${res.status} ${text.slice(0, 300)}`);
        if (res.status >= 400 && method !== 'GET') {
          const err = (JSON.parse(text) as { error: { code: number } }).error;
          assert.equal(err.code, res.status);
        }
      } finally {
        clearTimeout(timer);
      }
    });
    await Promise.all(batch);
    sent += batch.length;
  }
  assert.ok(sent > 50, `sent ${sent}`);
  if (process.env.FUZZ_SEED) console.log(sent, JSON.stringify(counts));
  assert.ok((counts[200] ?? 0) > 0 && (counts[400] ?? 0) > 0, JSON.stringify(counts));
  assert.ok(await waitFor(() => s.engine.numUnfinishedRequests === 0), 'no request left in the engine');
  assert.equal(s.engine.isHealthy(), true);
  const ok = await fetch(`${s.base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'In the beginning', max_tokens: 2 }),
  });
  assert.equal(ok.status, 200);
});
