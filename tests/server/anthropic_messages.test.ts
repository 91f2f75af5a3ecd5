// POST /v1/messages and /v1/messages/count_tokens end to end over loopback with
// the official @anthropic-ai/sdk: answers equal /v1/chat/completions' greedy text
// for the same conversation, the stream's events in Anthropic's order, stop
// reasons, usage, x-api-key, and bad input in Anthropic's error shape.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { metric, MODEL, startServer, type TestServer } from './helpers.js';

const KEY = 'anthropic-key';
let s: TestServer;
let client: Anthropic;
let openai: OpenAI;

before(async () => {
  s = await startServer({ apiKeys: [KEY] });
  client = new Anthropic({ baseURL: s.base, apiKey: KEY, maxRetries: 0 });
  openai = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: KEY, maxRetries: 0 });
});

after(async () => {
  await s.server.close();
});

type Json = any;
// NOTE: temperature is on the wire (vLLM reads it) though this SDK version's types leave it out.
const greedy: {} = { temperature: 0 };

async function chatText(messages: { role: string; content: string }[], maxTokens: number, stop?: string[]) {
  const r = await openai.chat.completions.create({ model: MODEL, messages: messages as never, max_tokens: maxTokens, temperature: 0, stop });
  return { text: r.choices[0].message.content ?? '', finish: r.choices[0].finish_reason, usage: r.usage! };
}

test('messages.create: system and turns answer as chat completions does; stop_reason max_tokens; usage; counted in the metrics', async () => {
  const before = await metric(s.base, 'vllm:request_success_total', 'finished_reason="length"');
  const m = await client.messages.create({
    model: MODEL,
    max_tokens: 12,
    ...greedy,
    system: 'Speak as the King James Bible.',
    messages: [{ role: 'user', content: 'Who art thou?' }, { role: 'assistant', content: [{ type: 'text', text: 'I am' }] }, { role: 'user', content: [{ type: 'text', text: 'Say more.' }] }],
  });
  const ref = await chatText(
    [{ role: 'system', content: 'Speak as the King James Bible.' }, { role: 'user', content: 'Who art thou?' }, { role: 'assistant', content: 'I am' }, { role: 'user', content: 'Say more.' }],
    12,
  );
  assert.match(m.id, /^msg_/);
  assert.equal(m.type, 'message');
  assert.equal(m.role, 'assistant');
  assert.equal(m.model, MODEL);
  assert.equal(m.content.length, 1);
  assert.equal(m.content[0].type, 'text');
  assert.equal(m.content[0].type === 'text' && m.content[0].text, ref.text);
  assert.equal(m.stop_reason, 'max_tokens');
  assert.equal(m.stop_sequence, null);
  assert.equal(m.usage.output_tokens, 12);
  assert.equal(m.usage.input_tokens + (m.usage.cache_read_input_tokens ?? 0), ref.usage.prompt_tokens);
  assert.ok((await metric(s.base, 'vllm:request_success_total', 'finished_reason="length"')) >= before + 2);

  const count = await client.messages.countTokens({
    model: MODEL,
    system: 'Speak as the King James Bible.',
    messages: [{ role: 'user', content: 'Who art thou?' }, { role: 'assistant', content: 'I am' }, { role: 'user', content: 'Say more.' }],
  });
  assert.equal(count.input_tokens, ref.usage.prompt_tokens);
});

test('messages.create: stop_sequences end the answer with stop_reason stop_sequence, as chat completions with stop', async () => {
  const probe = await chatText([{ role: 'user', content: 'In the beginning' }], 24);
  const words = probe.text.trim().split(/\s+/);
  assert.ok(words.length >= 3, probe.text);
  const stop = words[2];
  const m = await client.messages.create({ model: MODEL, max_tokens: 24, ...greedy, stop_sequences: [stop], messages: [{ role: 'user', content: 'In the beginning' }] });
  const ref = await chatText([{ role: 'user', content: 'In the beginning' }], 24, [stop]);
  assert.equal(m.stop_reason, 'stop_sequence');
  assert.equal(m.stop_sequence, stop);
  assert.equal(m.content[0].type === 'text' && m.content[0].text, ref.text);
});

test('messages.stream: message_start, ping, content_block_start/delta/stop, message_delta, message_stop; text as the plain answer', async () => {
  const params = { model: MODEL, max_tokens: 10, ...greedy, messages: [{ role: 'user' as const, content: 'And God said' }] };
  const plain = await client.messages.create(params);
  const stream = client.messages.stream(params);
  const types: string[] = [];
  let text = '';
  stream.on('streamEvent', (ev) => types.push(ev.type));
  stream.on('text', (d) => (text += d));
  const final = await stream.finalMessage();
  const distinct = types.filter((t, i) => t !== types[i - 1]);
  assert.deepEqual(distinct, ['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
  assert.equal(text, plain.content[0].type === 'text' ? plain.content[0].text : null);
  assert.deepEqual(final.content, plain.content);
  assert.equal(final.stop_reason, 'max_tokens');
  assert.equal(final.usage.output_tokens, 10);

  // the raw wire: named events, a ping after message_start
  const res = await fetch(`${s.base}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': KEY, 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ ...params, stream: true }),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const events = (await res.text()).split('\n').filter((l) => l.startsWith('event: ')).map((l) => l.slice(7));
  assert.deepEqual(events.slice(0, 3), ['message_start', 'ping', 'content_block_start']);
  assert.equal(events.at(-1), 'message_stop');
});

test('bad input in Anthropic\'s error shape; x-api-key required where --api-key is set', async () => {
  const cases: [unknown, number, string, RegExp][] = [
    [{ model: MODEL, messages: [{ role: 'user', content: 'x' }] }, 400, 'invalid_request_error', /max_tokens/],
    [{ model: MODEL, max_tokens: 0, messages: [{ role: 'user', content: 'x' }] }, 400, 'invalid_request_error', /max_tokens/],
    [{ model: MODEL, max_tokens: 4, messages: [] }, 400, 'invalid_request_error', /messages/],
    [{ model: MODEL, max_tokens: 4, messages: [{ role: 'tool', content: 'x' }] }, 400, 'invalid_request_error', /role/],
    [{ model: MODEL, max_tokens: 4, messages: [{ role: 'user', content: [{ type: 'image', source: {} }] }] }, 400, 'invalid_request_error', /image/],
    [{ model: 'claude-sonnet-4', max_tokens: 4, messages: [{ role: 'user', content: 'x' }] }, 404, 'not_found_error', /claude-sonnet-4/],
  ];
  for (const [body, status, type, re] of cases) {
    const res = await fetch(`${s.base}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': KEY }, body: JSON.stringify(body) });
    assert.equal(res.status, status, JSON.stringify(body));
    const err = (await res.json()) as Json;
    assert.equal(err.type, 'error');
    assert.equal(err.error.type, type, JSON.stringify(body));
    assert.match(err.error.message, re);
  }
  const noKey = await fetch(`${s.base}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'wrong' }, body: '{}' });
  assert.equal(noKey.status, 401);
  assert.equal(((await noKey.json()) as Json).error.type, 'authentication_error');
  const bad = new Anthropic({ baseURL: s.base, apiKey: 'wrong', maxRetries: 0 });
  await assert.rejects(bad.messages.create({ model: MODEL, max_tokens: 2, messages: [{ role: 'user', content: 'x' }] }), (e: Json) => e.status === 401);
  await assert.rejects(
    client.messages.create({ model: MODEL, max_tokens: 2, messages: [{ role: 'user', content: 'x' }], tools: [{ name: 'f', input_schema: { type: 'object' } }] }),
    (e: Json) => e.status === 400 && e.error?.error?.type === 'invalid_request_error',
  );
  assert.equal(s.engine.numUnfinishedRequests, 0);
});
