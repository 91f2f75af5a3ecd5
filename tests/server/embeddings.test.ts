// POST /v1/embeddings through the official openai client: the pooled vector equals
// HuggingFace's final normed hidden state of the last token (normalized), in
// float and base64 encodings; bad input gets OpenAI's error shape.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { loadCompactReference, type CompactCase } from '../helpers/compact_reference.js';
import { startServer, type TestServer } from './helpers.js';

let s: TestServer;
let client: OpenAI;
let ref: CompactCase[];

before(async () => {
  s = await startServer();
  client = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'none', maxRetries: 0 });
  ref = loadCompactReference('tests/fixtures/tiny-llama-kjv').cases;
});

after(async () => {
  await s.server.close();
});

function expected(c: CompactCase): number[] {
  const H = 256;
  const T = c.promptIds.length;
  const v = Array.from(c.hidden.subarray((T - 1) * H, T * H));
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

test('embeddings of token-id inputs equal HF hidden states (last token, L2-normalized)', async () => {
  const res = await client.embeddings.create({ model: 'models/tiny-llama-kjv', input: ref.map((c) => c.promptIds), encoding_format: 'float' });
  assert.equal(res.object, 'list');
  assert.equal(res.data.length, ref.length);
  res.data.forEach((d, i) => {
    assert.equal(d.index, i);
    const e = expected(ref[i]);
    const err = Math.max(...d.embedding.map((x, j) => Math.abs(x - e[j])));
    assert.ok(err <= 1e-4, `input ${i}: max error ${err}`);
  });
  assert.equal(res.usage.prompt_tokens, ref.reduce((a, c) => a + c.promptIds.length, 0));
});

test('base64 encoding decodes to the same floats; text input works', async () => {
  const f = await client.embeddings.create({ model: 'models/tiny-llama-kjv', input: ref[0].prompt, encoding_format: 'float' });
  const raw = await fetch(`${s.base}/v1/embeddings`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ input: ref[0].prompt, encoding_format: 'base64' }),
  }).then((r) => r.json() as Promise<{ data: { embedding: string }[] }>);
  const buf = Buffer.from(raw.data[0].embedding, 'base64');
  const decoded = Array.from(new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4));
  assert.equal(decoded.length, f.data[0].embedding.length);
  decoded.forEach((x, j) => assert.ok(Math.abs(x - f.data[0].embedding[j]) < 1e-6));
});

test('bad embedding requests get 400 / 404 in OpenAI shape', async () => {
  for (const [body, status] of [[{ input: '' }, 400], [{ input: [] }, 400], [{ input: 'x', model: 'nope' }, 404], [{ input: 5 }, 400], [{ input: [999999] }, 400]] as const) {
    const r = await fetch(`${s.base}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(r.status, status, JSON.stringify(body));
    const j = (await r.json()) as { error: { message: string; type: string; code: number } };
    assert.equal(typeof j.error.message, 'string');
    assert.equal(j.error.code, status);
  }
});
