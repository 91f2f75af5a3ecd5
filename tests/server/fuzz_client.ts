// The fuzzing client of fuzz.test.ts, run in a worker thread so that the server's
// event loop (and the /health probe on it) shares its thread with nothing else:
// random and mutated bodies (types, sizes, nesting, encodings) to every route.
import assert from 'node:assert/strict';
import { parentPort, workerData } from 'node:worker_threads';
import { gzipSync } from 'node:zlib';
import { seededRandom } from '../../src/metrics/serving_benchmark.js';
import { MODEL } from './helpers.js';

let rand = seededRandom(1234);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];

const JUNK: unknown[] = [
  null, true, false, 0, -1, 1, 0.5, -0.0001, 1e308, -1e308, 2 ** 53, 2 ** 31, 4096, 513, '', 'x', '1', 'null', '\u0000',
  '😀'.repeat(50), 'Ω≈ç√∫', '\ud800', [], [null], [1, 2, 3], [[1], ['a']], {}, { a: { b: { c: [1, { d: null }] } } }, ['a', 'b'],
  [{ type: 'text', text: 'hi' }], [{ type: 'image_url' }], 'a'.repeat(5000), '2', 'true', '-1', '1e400', 9223372036854775807,
  { type: 'json_object' }, { json: {} }, ['x'], Array.from({ length: 300 }, (_, i) => i),
];

/** JSON text of a value nested `depth` levels deep (arrays or objects); as text, since JSON.stringify would overflow the stack. */
function nestedText(depth: number, obj: boolean): string {
  return obj ? '{"a":'.repeat(depth) + '1' + '}'.repeat(depth) : '['.repeat(depth) + '1' + ']'.repeat(depth);
}

/** A body's text: mostly a mutated valid body, sometimes with a deeply nested field (the last of a duplicated key wins). */
function bodyText(path: string): string {
  const text = JSON.stringify(mutate(validBody(path)));
  if (rand() < 0.06 && text.endsWith('}')) {
    const field = pick(['prompt', 'messages', 'input', 'tokens', 'stop', 'logit_bias']);
    return `${text.slice(0, -1)}${text.length > 2 ? ',' : ''}"${field}":${nestedText(1 + Math.floor(rand() * 20_000), rand() < 0.5)}}`;
  }
  return text;
}

/** Fields with values that may run the engine stay small so that the test stays bounded. */
const FIELDS = [
  'model', 'prompt', 'messages', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'top_k', 'min_p', 'seed', 'stop',
  'stream', 'stream_options', 'logprobs', 'top_logprobs', 'echo', 'logit_bias', 'stop_token_ids', 'ignore_eos', 'min_tokens',
  'repetition_penalty', 'presence_penalty', 'frequency_penalty', 'prompt_logprobs', 'allowed_token_ids', 'add_generation_prompt',
  'continue_final_message', 'chat_template_kwargs', 'cache_salt', 'truncate_prompt_tokens', 'priority', 'request_id', 'tokens',
  'add_special_tokens', 'return_token_strs', 'skip_special_tokens', 'include_stop_str_in_output', 'response_format', 'tools', 'tool_choice',
  'input', 'encoding_format', 'best_of', 'use_beam_search', 'structured_outputs', 'guided_json', 'truncation_side', 'return_token_ids',
  'unknown_field', '__proto__', 'constructor',
];

function validBody(path: string): Record<string, unknown> {
  switch (path) {
    case '/v1/chat/completions':
      return { messages: [{ role: 'user', content: 'Who art thou?' }], max_tokens: 4 };
    case '/tokenize':
      return rand() < 0.5 ? { prompt: 'In the beginning' } : { messages: [{ role: 'user', content: 'hi' }] };
    case '/detokenize':
      return { tokens: [1, 2, 3] };
    case '/v1/embeddings':
      return { input: 'In the beginning' };
    case '/v1/responses':
      return { input: rand() < 0.5 ? 'Who art thou?' : [{ role: 'user', content: 'hi' }], max_output_tokens: 4 };
    case '/v1/messages':
      return { model: MODEL, max_tokens: 4, messages: [{ role: 'user', content: 'Who art thou?' }] };
    case '/v1/messages/count_tokens':
      return { model: MODEL, messages: [{ role: 'user', content: 'hi' }] };
    case '/invocations':
      return rand() < 0.5 ? { prompt: 'In the beginning', max_tokens: 4 } : { messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 };
    default:
      return { prompt: 'In the beginning', max_tokens: 4 };
  }
}

function mutate(body: Record<string, unknown>): unknown {
  const r = rand();
  if (r < 0.05) return pick(JUNK);
  if (r < 0.07) return { ...body, prompt: 'In the beginning. '.repeat(20_000 + Math.floor(rand() * 40_000)) }; // 360 KB-1 MB: parsed off the loop
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

/** A body's bytes in some encoding a client may send: UTF-8, invalid UTF-8, a BOM, UTF-16, gzip (no Content-Encoding support: 400). */
function encode(text: string): { bytes: Buffer; headers: Record<string, string> } {
  const r = rand();
  if (r < 0.85) return { bytes: Buffer.from(text, 'utf8'), headers: {} };
  if (r < 0.9) {
    const b = Buffer.from(text, 'utf8');
    b[Math.floor(rand() * b.length)] = pick([0xff, 0xc3, 0x80, 0xed]); // broken UTF-8 sequence
    return { bytes: b, headers: {} };
  }
  if (r < 0.93) return { bytes: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]), headers: {} };
  if (r < 0.96) return { bytes: Buffer.from(text, 'utf16le'), headers: { 'content-type': 'application/json; charset=utf-16' } };
  return { bytes: gzipSync(text), headers: { 'content-encoding': 'gzip' } };
}

const GET_ROUTES = ['/v1/models', `/v1/models/${encodeURIComponent(MODEL)}`, '/v1/models/nope', '/v1/models/%E0%A4', '/health', '/ping', '/metrics',
  '/version', '/load', '/tokenizer_info', '/openapi.json', '/docs', '/', '/playground', '/v1/responses/resp_nope'];
const POST_ROUTES = ['/v1/completions', '/v1/chat/completions', '/v1/embeddings', '/tokenize', '/detokenize', '/invocations', '/ping',
  '/v1/responses', '/v1/messages', '/v1/messages/count_tokens'];


export interface FuzzResult {
  sent: number;
  counts: Record<number, number>;
  failures: string[];
}

/** Sends fuzzed requests 8 at a time for up to `ms` (and at most `maxCount`). */
export async function runFuzz(base: string, seed: number, ms: number, maxCount: number): Promise<FuzzResult> {
  rand = seededRandom(seed);
  const routes = [...GET_ROUTES, ...POST_ROUTES, '/nope'];
  const counts: Record<number, number> = {};
  const failures: string[] = [];
  const deadline = Date.now() + ms;
  let sent = 0;
  while (Date.now() < deadline && sent < maxCount) {
    const batch = Array.from({ length: 8 }, async () => {
      const path = pick(routes);
      const method = rand() < 0.9 ? (GET_ROUTES.includes(path) && !POST_ROUTES.includes(path) ? 'GET' : 'POST') : pick(['PUT', 'DELETE', 'GET', 'POST', 'PATCH']);
      const text = method === 'GET' ? undefined : rand() < 0.1 ? pick(['{', '}{', '{"a":', '\u0000', 'null', '[]', '"s"', '{"prompt": "\ud800"}']) : bodyText(path);
      const enc = text === undefined ? undefined : encode(text);
      const body = enc?.bytes;
      const headers: Record<string, string> = { 'content-type': rand() < 0.95 ? 'application/json' : pick(['text/plain', 'application/xml', '']), ...enc?.headers };
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), 10_000);
      try {
        const res = await fetch(base + path, { method, headers, body, signal: ac.signal });
        const answer = await res.text();
        counts[res.status] = (counts[res.status] ?? 0) + 1;
        assert.ok(res.status < 500, `${method} ${path} ${String(body?.subarray(0, 200))} -> ${res.status} ${answer.slice(0, 300)}`);
        if (res.status >= 400 && method !== 'GET') {
          const parsed = JSON.parse(answer) as { type?: string; error: { code?: number; type: string; message: string } };
          // Anthropic's routes answer in Anthropic's error shape; the others in OpenAI's.
          if (path.startsWith('/v1/messages') && res.status !== 404 && res.status !== 405) assert.equal(parsed.type, 'error', answer.slice(0, 300));
          else if (!path.startsWith('/v1/messages')) assert.equal(parsed.error.code, res.status, answer.slice(0, 300));
          assert.equal(typeof parsed.error.message, 'string');
        }
      } catch (e) {
        failures.push((e as Error).message.slice(0, 600));
      } finally {
        clearTimeout(timer);
      }
    });
    await Promise.all(batch);
    sent += batch.length;
  }
  return { sent, counts, failures };
}

if (parentPort && (workerData as { fuzz?: unknown } | null)?.fuzz) {
  const { base, seed, ms, maxCount } = (workerData as { fuzz: { base: string; seed: number; ms: number; maxCount: number } }).fuzz;
  void runFuzz(base, seed, ms, maxCount).then((r) => parentPort!.postMessage(r));
}
