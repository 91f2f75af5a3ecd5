// bench serve's client times tokens as vLLM's benchmark does: every streamed chunk with
// a choice is one token's arrival, its text empty or not (a special token, or an id
// the tokenizer cannot spell: the server still sends the chunk, with its token ids).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { requestCompletion, type BenchServeOptions } from '../../src/entrypoints/cli/bench_serve.js';

test('bench serve client: a chunk with empty text counts as a token (TTFT and ITL as vLLM measures them)', async () => {
  const texts = ['', 'a', '', 'b'];
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    texts.forEach((t, i) => res.write(`data: ${JSON.stringify({ choices: [{ index: 0, text: t, finish_reason: i === texts.length - 1 ? 'length' : null }] })}\n\n`));
    res.write(`data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 3, completion_tokens: texts.length } })}\n\n`);
    res.end('data: [DONE]\n\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const { port } = server.address() as AddressInfo;
    const o = { baseUrl: `http://127.0.0.1:${port}`, endpoint: '/v1/completions', model: 'm', ignoreEos: true } as BenchServeOptions;
    const out = await requestCompletion(o, { prompt: 'x', promptLen: 3, outputLen: texts.length });
    assert.equal(out.success, true, out.error);
    assert.equal(out.generatedText, 'ab');
    assert.equal(out.itl.length, texts.length - 1, 'one inter-token gap per chunk after the first, empty ones included');
    assert.ok(out.ttft > 0);
    assert.equal(out.outputTokens, texts.length);
  } finally {
    server.close();
  }
});
