// POST /v1/responses end to end over loopback with the official openai client:
// plain and streamed answers equal /v1/chat/completions' greedy text for the same
// conversation (same chat template, same engine), previous_response_id continues
// a stored conversation, GET and cancel, the store's LRU bound, bad inputs.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { ResponsesStore } from '../../src/entrypoints/openai/responses_store.js';
import { metric, MODEL, startServer, type TestServer, waitFor } from './helpers.js';

const KEY = 'resp-key';
let s: TestServer;
let client: OpenAI;

before(async () => {
  s = await startServer({ apiKeys: [KEY], responsesStoreSize: 4 });
  client = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: KEY, maxRetries: 0 });
});

after(async () => {
  await s.server.close();
});

type Json = any;
async function post(path: string, body: unknown): Promise<Response> {
  return fetch(s.base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: JSON.stringify(body),
  });
}

async function chatText(messages: { role: string; content: string }[], maxTokens: number): Promise<{ text: string; finish: string | null }> {
  const r = await client.chat.completions.create({ model: MODEL, messages: messages as never, max_tokens: maxTokens, temperature: 0 });
  return { text: r.choices[0].message.content ?? '', finish: r.choices[0].finish_reason };
}

test('responses.create: a string input with instructions answers as chat completions does, with OpenAI usage fields', async () => {
  const before = await metric(s.base, 'vllm:request_success_total', 'finished_reason="length"');
  const r = await client.responses.create({ model: MODEL, input: 'Who art thou?', instructions: 'Speak as the King James Bible.', max_output_tokens: 12, temperature: 0 });
  const ref = await chatText([{ role: 'system', content: 'Speak as the King James Bible.' }, { role: 'user', content: 'Who art thou?' }], 12);
  assert.match(r.id, /^resp_/);
  assert.equal(r.object, 'response');
  assert.equal(r.model, MODEL);
  assert.equal(r.output.length, 1);
  const msg = r.output[0];
  assert.equal(msg.type, 'message');
  assert.ok(msg.type === 'message' && /^msg_/.test(msg.id) && msg.role === 'assistant');
  assert.equal(r.output_text, ref.text);
  assert.ok(ref.text.length > 0);
  assert.equal(ref.finish, 'length');
  assert.equal(r.status, 'incomplete');
  assert.deepEqual(r.incomplete_details, { reason: 'max_output_tokens' });
  assert.equal(r.instructions, 'Speak as the King James Bible.');
  assert.equal(r.max_output_tokens, 12);
  assert.equal(r.usage?.output_tokens, 12);
  assert.ok((r.usage?.input_tokens ?? 0) > 0);
  assert.equal(r.usage?.total_tokens, (r.usage?.input_tokens ?? 0) + 12);
  assert.equal(typeof r.usage?.input_tokens_details.cached_tokens, 'number');
  assert.equal(r.usage?.output_tokens_details.reasoning_tokens, 0);
  // counted in the engine's Prometheus metrics like every other generation (the chat reference adds one more)
  assert.ok((await metric(s.base, 'vllm:request_success_total', 'finished_reason="length"')) >= before + 2);
});

test('responses.create: input items (developer, user, assistant output_text) render as chat messages; completed when the model stops', async () => {
  const input = [
    { role: 'developer' as const, content: 'Answer briefly.' },
    { role: 'user' as const, content: [{ type: 'input_text' as const, text: 'In the beginning' }] },
    { type: 'message' as const, role: 'assistant' as const, content: [{ type: 'output_text' as const, text: 'God created', annotations: [] }], id: 'msg_1', status: 'completed' as const },
    { role: 'user' as const, content: 'And then?' },
  ];
  const r = await client.responses.create({ model: MODEL, input: input as never, max_output_tokens: 200, temperature: 0 });
  const ref = await chatText(
    [{ role: 'system', content: 'Answer briefly.' }, { role: 'user', content: 'In the beginning' }, { role: 'assistant', content: 'God created' }, { role: 'user', content: 'And then?' }],
    200,
  );
  assert.equal(r.output_text, ref.text);
  assert.equal(r.status, ref.finish === 'length' ? 'incomplete' : 'completed');
});

test('responses.create stream: the event sequence, sequence numbers in order, deltas joining to the plain answer', async () => {
  const plain = await client.responses.create({ model: MODEL, input: 'And God said', max_output_tokens: 10, temperature: 0 });
  const stream = await client.responses.create({ model: MODEL, input: 'And God said', max_output_tokens: 10, temperature: 0, stream: true });
  const types: string[] = [];
  const seqs: number[] = [];
  let deltas = '';
  let final: Json = null;
  for await (const ev of stream) {
    types.push(ev.type);
    seqs.push(ev.sequence_number);
    if (ev.type === 'response.output_text.delta') deltas += ev.delta;
    if (ev.type === 'response.output_text.done') assert.equal(ev.text, deltas);
    if (ev.type === 'response.incomplete' || ev.type === 'response.completed') final = ev.response;
  }
  assert.deepEqual(seqs, seqs.map((_, i) => i));
  const distinct = types.filter((t, i) => t !== types[i - 1]);
  assert.deepEqual(distinct, [
    'response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added',
    'response.output_text.delta', 'response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.incomplete',
  ]);
  assert.equal(deltas, plain.output_text);
  assert.equal(final.output[0].content[0].text, plain.output_text);
  assert.equal(final.usage.output_tokens, 10);

  // the SDK's stream helper accumulates the same answer
  const helper = client.responses.stream({ model: MODEL, input: 'And God said', max_output_tokens: 10, temperature: 0 });
  let helperDeltas = '';
  helper.on('response.output_text.delta', (e) => (helperDeltas += e.delta));
  for await (const _ of helper) void _;
  assert.equal(helperDeltas, plain.output_text);
});

test('previous_response_id continues the stored conversation; GET /v1/responses/{id} returns the stored response', async () => {
  const first = await client.responses.create({ model: MODEL, input: 'Who art thou?', instructions: 'Be brief.', max_output_tokens: 8, temperature: 0 });
  const got = await client.responses.retrieve(first.id);
  assert.equal(got.id, first.id);
  assert.equal(got.output_text, first.output_text);
  const second = await client.responses.create({ model: MODEL, input: 'Say more.', previous_response_id: first.id, max_output_tokens: 8, temperature: 0 });
  assert.equal(second.previous_response_id, first.id);
  // instructions are not inherited; the earlier turns and the earlier answer are
  const ref = await chatText([{ role: 'user', content: 'Who art thou?' }, { role: 'assistant', content: first.output_text }, { role: 'user', content: 'Say more.' }], 8);
  assert.equal(second.output_text, ref.text);
  assert.ok((second.usage?.input_tokens ?? 0) > (first.usage?.input_tokens ?? 0));

  const unstored = await client.responses.create({ model: MODEL, input: 'Hi', store: false, max_output_tokens: 2 });
  const res = await fetch(`${s.base}/v1/responses/${unstored.id}`, { headers: { authorization: `Bearer ${KEY}` } });
  assert.equal(res.status, 404);
  assert.match(((await res.json()) as Json).error.message, /not found/);
  await assert.rejects(client.responses.create({ model: MODEL, input: 'Hi', previous_response_id: 'resp_nope' }), (e: Json) => e.status === 404);
});

test('background responses: queued at once, retrievable, cancellable; a synchronous response cannot be cancelled', async () => {
  const bg = await client.responses.create({ model: MODEL, input: 'And the earth', max_output_tokens: 6, temperature: 0, background: true });
  assert.equal(bg.status, 'queued');
  assert.equal(bg.background, true);
  assert.ok(await waitFor(async () => (await client.responses.retrieve(bg.id)).status === 'incomplete', 10_000));
  const done = await client.responses.retrieve(bg.id);
  assert.equal(done.usage?.output_tokens, 6);

  const long = await client.responses.create({ model: MODEL, input: 'And the earth', max_output_tokens: 400, temperature: 0, background: true, ignore_eos: true } as never);
  const cancelled = await client.responses.cancel(long.id);
  assert.equal(cancelled.status, 'cancelled');
  assert.ok((cancelled.usage?.output_tokens ?? 400) < 400);
  assert.ok(await waitFor(() => s.engine.numUnfinishedRequests === 0));
  assert.equal((await client.responses.retrieve(long.id)).status, 'cancelled');

  const sync = await client.responses.create({ model: MODEL, input: 'Hi', max_output_tokens: 2 });
  await assert.rejects(client.responses.cancel(sync.id), (e: Json) => e.status === 400 && /synchronous/.test(e.message));
  await assert.rejects(client.responses.cancel('resp_unknown'), (e: Json) => e.status === 404);
});

test('bad input: 400s naming the field, 401 without the key, 404 for another model', async () => {
  const cases: [unknown, RegExp][] = [
    [{ model: MODEL }, /input/],
    [{ model: MODEL, input: [] }, /input must not be empty/],
    [{ model: MODEL, input: 5 }, /input/],
    [{ model: MODEL, input: [{ type: 'web_search_call', id: 'x' }] }, /web_search_call/],
    [{ model: MODEL, input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'http://x' }] }] }, /input_image/],
    [{ model: MODEL, input: 'x', max_output_tokens: 0 }, /max_output_tokens/],
    [{ model: MODEL, input: 'x', background: true, store: false }, /background/],
    [{ model: MODEL, input: 'x', temperature: 'hot' }, /temperature/],
  ];
  for (const [body, re] of cases) {
    const res = await post('/v1/responses', body);
    assert.equal(res.status, 400, JSON.stringify(body));
    const err = ((await res.json()) as Json).error;
    assert.match(err.message, re, JSON.stringify(body));
  }
  const other = await post('/v1/responses', { model: 'gpt-4o', input: 'x' });
  assert.equal(other.status, 404);
  const noKey = await fetch(s.base + '/v1/responses', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"input":"x"}' });
  assert.equal(noKey.status, 401);
  assert.equal(s.engine.numUnfinishedRequests, 0);
});

test('ResponsesStore: bounded, least recently used evicted first, a generating entry kept', () => {
  const store = new ResponsesStore(2);
  const entry = (id: string, generating = false) => ({ response: { id } as never, history: [], abort: generating ? new AbortController() : null, done: Promise.resolve() });
  store.put('a', entry('a'));
  store.put('b', entry('b'));
  assert.ok(store.get('a')); // a is now the most recent
  store.put('c', entry('c'));
  assert.equal(store.get('b'), undefined);
  assert.ok(store.get('a') && store.get('c'));
  const busy = new ResponsesStore(1);
  busy.put('x', entry('x', true));
  busy.put('y', entry('y'));
  assert.ok(busy.get('x'), 'a response still generating is not evicted');
  assert.throws(() => new ResponsesStore(-1));
});
