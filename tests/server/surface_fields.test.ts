// vLLM's request fields and flags that change answers, through the official openai
// client over loopback: truncate_prompt_tokens with truncation_side, return_token_ids
// (null when off, the prompt's ids on the first stream chunk), token_id:N logprobs
// (per request and --return-tokens-as-token-ids), --max-logprobs (-1: the whole
// vocabulary), --enable-prompt-tokens-details and --enable-force-include-usage.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';
import { attachServer, MODEL, startServer, type TestServer } from './helpers.js';

const ref = JSON.parse(readFileSync('tests/fixtures/tiny-llama-kjv/reference.json', 'utf8')) as {
  cases: { prompt: string; prompt_ids: number[]; generated_ids: number[]; generated_text: string }[];
};
const case0 = ref.cases[0];

let s: TestServer;
let flags: TestServer; // the same engine behind --return-tokens-as-token-ids --enable-prompt-tokens-details --enable-force-include-usage
let client: OpenAI;
let flagsClient: OpenAI;

before(async () => {
  s = await startServer();
  flags = await attachServer(s.engine, { returnTokensAsTokenIds: true, enablePromptTokensDetails: true, enableForceIncludeUsage: true });
  client = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'none', maxRetries: 0 });
  flagsClient = new OpenAI({ baseURL: `${flags.base}/v1`, apiKey: 'none', maxRetries: 0 });
});

after(async () => {
  flags.server.server.close();
  await s.server.close();
});

// The tests read vLLM's extra fields, which the client's types do not have.
type Json = any;

async function post(base: string, path: string, body: unknown): Promise<{ status: number; body: Json }> {
  const r = await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, body: await r.json() };
}

test('truncate_prompt_tokens keeps the last k tokens (left, the default) or the first k (right)', async () => {
  const prompt = ref.cases.map((c) => c.prompt).join(' ');
  const ids = s.engine.tokenizer.encode(prompt);
  assert.ok(ids.length > 10);
  const base = { model: MODEL, prompt, max_tokens: 4, temperature: 0, return_token_ids: true } as Json;
  const left = (await client.completions.create({ ...base, truncate_prompt_tokens: 5 })) as Json;
  assert.deepEqual(left.choices[0].prompt_token_ids, ids.slice(-5));
  assert.equal(left.usage.prompt_tokens, 5);
  const right = (await client.completions.create({ ...base, truncate_prompt_tokens: 5, truncation_side: 'right' })) as Json;
  assert.deepEqual(right.choices[0].prompt_token_ids, ids.slice(0, 5));
  // the truncated prompt generates what those ids generate when sent as the prompt
  const direct = (await client.completions.create({ ...base, prompt: ids.slice(0, 5) })) as Json;
  assert.deepEqual(right.choices[0].token_ids, direct.choices[0].token_ids);
  const whole = (await client.completions.create({ ...base, truncate_prompt_tokens: -1 })) as Json;
  assert.deepEqual(whole.choices[0].prompt_token_ids, ids, '-1: up to max_model_len - max_tokens, which this prompt fits');

  const chat = (await client.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: prompt }], max_tokens: 2, temperature: 0,
    truncate_prompt_tokens: 3, truncation_side: 'right', return_token_ids: true,
  } as Json)) as Json;
  const rendered = s.engine.tokenizer.encode(s.engine.tokenizer.applyChatTemplate([{ role: 'user', content: prompt }], { addGenerationPrompt: true }), { addSpecialTokens: false });
  assert.deepEqual(chat.prompt_token_ids, rendered.slice(0, 3));

  // vLLM's limit: k <= max_model_len - max_tokens (512 - 16 here)
  const tooMany = await post(s.base, '/v1/completions', { prompt: case0.prompt, truncate_prompt_tokens: 497 });
  assert.equal(tooMany.status, 400);
  assert.equal(tooMany.body.error.param, 'truncate_prompt_tokens');
  assert.match(tooMany.body.error.message, /truncate_prompt_tokens=497 cannot be greater than max_model_len - max_tokens = 496/);
  assert.equal((await post(s.base, '/v1/completions', { prompt: case0.prompt, truncate_prompt_tokens: 496, max_tokens: 1 })).status, 200);
  const side = await post(s.base, '/v1/completions', { prompt: 'x', truncate_prompt_tokens: 1, truncation_side: 'middle' });
  assert.equal(side.status, 400);
  assert.equal(side.body.error.param, 'truncation_side');
});

test('return_token_ids: the ids when asked, null (present) when not; streamed, the prompt ids come once per choice', async () => {
  const base = { model: MODEL, prompt: case0.prompt, max_tokens: case0.generated_ids.length, temperature: 0 } as Json;
  const off = (await client.completions.create(base)) as Json;
  assert.ok('token_ids' in off.choices[0] && 'prompt_token_ids' in off.choices[0]);
  assert.equal(off.choices[0].token_ids, null);
  assert.equal(off.choices[0].prompt_token_ids, null);
  const on = (await client.completions.create({ ...base, return_token_ids: true })) as Json;
  assert.deepEqual(on.choices[0].prompt_token_ids, case0.prompt_ids);
  assert.deepEqual(on.choices[0].token_ids, case0.generated_ids, "HuggingFace's greedy ids");

  // n = 2 (seeded sampling): each choice's streamed ids join to the same request's unstreamed ones
  const sampled = { ...base, n: 2, temperature: 1, seed: 3, return_token_ids: true };
  const full = (await client.completions.create(sampled)) as Json;
  const stream = await client.completions.create({ ...sampled, stream: true });
  const ids: number[][] = [[], []];
  const promptIds: (number[] | null)[][] = [[], []];
  for await (const chunk of stream as unknown as AsyncIterable<Json>) {
    for (const c of chunk.choices) {
      ids[c.index].push(...c.token_ids);
      promptIds[c.index].push(c.prompt_token_ids);
    }
  }
  for (const i of [0, 1]) {
    assert.deepEqual(ids[i], full.choices[i].token_ids, `choice ${i}: the streamed ids join to the full answer's`);
    assert.deepEqual(promptIds[i][0], case0.prompt_ids, `choice ${i}: the prompt ids on its first chunk`);
    assert.ok(promptIds[i].length > 1 && promptIds[i].slice(1).every((p) => p === null), `choice ${i}: null afterwards`);
  }

  const messages = [{ role: 'user' as const, content: 'And God said' }];
  const chatOff = (await client.chat.completions.create({ model: MODEL, messages, max_tokens: 4, temperature: 0 })) as Json;
  assert.equal(chatOff.prompt_token_ids, null);
  assert.equal(chatOff.choices[0].token_ids, null);
  const chatOn = (await client.chat.completions.create({ model: MODEL, messages, max_tokens: 4, temperature: 0, return_token_ids: true } as Json)) as Json;
  assert.equal(chatOn.prompt_token_ids.length, chatOn.usage.prompt_tokens);
  assert.equal(s.engine.tokenizer.decode(chatOn.choices[0].token_ids), chatOn.choices[0].message.content);
  const offChunks: Json[] = [];
  for await (const c of (await client.chat.completions.create({ model: MODEL, messages, max_tokens: 2, stream: true })) as AsyncIterable<Json>) offChunks.push(c);
  assert.ok('prompt_token_ids' in offChunks[0] && offChunks[0].prompt_token_ids === null, 'null on the role chunk when off');
  assert.ok(offChunks.slice(1).every((c) => c.choices.every((ch: Json) => ch.token_ids === null)));
  const chatStream = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 4, temperature: 0, stream: true, return_token_ids: true } as Json);
  const chunks: Json[] = [];
  for await (const c of chatStream as unknown as AsyncIterable<Json>) chunks.push(c);
  assert.deepEqual(chunks[0].prompt_token_ids, chatOn.prompt_token_ids, 'the role chunk carries the prompt ids');
  assert.ok(chunks.slice(1).every((c) => !('prompt_token_ids' in c)), 'and only it (vLLM leaves the field out of later chunks)');
  assert.deepEqual(chunks.slice(1).flatMap((c) => c.choices.flatMap((ch: Json) => ch.token_ids)), chatOn.choices[0].token_ids);
});

test("logprob tokens as 'token_id:N': per request, and server-wide with --return-tokens-as-token-ids", async () => {
  const body = { model: MODEL, prompt: case0.prompt, max_tokens: 5, temperature: 0, logprobs: 2, return_token_ids: true } as Json;
  const plain = (await client.completions.create(body)) as Json;
  assert.equal(plain.choices[0].logprobs.tokens.join(''), plain.choices[0].text);
  for (const [name, res] of [
    ['per request', await client.completions.create({ ...body, return_tokens_as_token_ids: true })],
    ['server flag', await flagsClient.completions.create(body)],
  ] as [string, Json][]) {
    const lp = res.choices[0].logprobs;
    assert.deepEqual(lp.tokens, res.choices[0].token_ids.map((id: number) => `token_id:${id}`), name);
    for (const top of lp.top_logprobs) for (const key of Object.keys(top)) assert.match(key, /^token_id:\d+$/);
    assert.deepEqual(lp.token_logprobs, plain.choices[0].logprobs.token_logprobs, `${name}: the same logprobs`);
    const lens = lp.tokens.map((t: string) => t.length);
    assert.deepEqual(lp.text_offset, lens.map((_: number, i: number) => lens.slice(0, i).reduce((a: number, b: number) => a + b, 0)));
  }
  const off = (await flagsClient.completions.create({ ...body, return_tokens_as_token_ids: false })) as Json;
  assert.deepEqual(off.choices[0].logprobs.tokens, plain.choices[0].logprobs.tokens, 'the request can turn it off');

  const chat = (await flagsClient.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: 'In the beginning' }], max_tokens: 3, temperature: 0, logprobs: true, top_logprobs: 2, return_token_ids: true,
  } as Json)) as Json;
  const content = chat.choices[0].logprobs.content;
  content.forEach((c: Json, i: number) => {
    const id = chat.choices[0].token_ids[i];
    assert.equal(c.token, `token_id:${id}`);
    assert.deepEqual(c.bytes, [...Buffer.from(s.engine.tokenizer.decode([id]), 'utf8')], "the sampled token's bytes are its text's (as vLLM)");
    assert.equal(c.top_logprobs.length, 2);
    assert.equal(c.top_logprobs[0].token, c.token, 'greedy: the top one is the sampled one');
  });
});

test('prompt_tokens_details only with --enable-prompt-tokens-details; usage on every stream with --enable-force-include-usage', async () => {
  const prompt = ref.cases.map((c) => c.prompt).join(' ').repeat(2);
  await client.completions.create({ model: MODEL, prompt, max_tokens: 1 });
  const plain = (await client.completions.create({ model: MODEL, prompt, max_tokens: 1 })) as Json;
  assert.ok(!('prompt_tokens_details' in plain.usage), JSON.stringify(plain.usage));
  const detailed = (await flagsClient.completions.create({ model: MODEL, prompt, max_tokens: 1 })) as Json;
  assert.ok(detailed.usage.prompt_tokens_details.cached_tokens >= 16, 'the repeated prompt hit the prefix cache');

  const lastChunk = async (c: OpenAI, extra: Json = {}) => {
    let last: Json = null;
    for await (const chunk of (await c.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 3, stream: true, ...extra })) as unknown as AsyncIterable<Json>) last = chunk;
    return last;
  };
  assert.equal((await lastChunk(client)).usage, undefined, 'no usage unless asked');
  const forced = await lastChunk(flagsClient);
  assert.deepEqual(forced.choices, []);
  assert.equal(forced.usage.completion_tokens, 3);
  const forcedOff = await lastChunk(flagsClient, { stream_options: { include_usage: false } });
  assert.equal(forcedOff.usage.completion_tokens, 3, 'forced even when the request says no (vLLM)');
  const completionChunks: Json[] = [];
  for await (const chunk of (await flagsClient.completions.create({ model: MODEL, prompt: 'Hi', max_tokens: 2, stream: true })) as AsyncIterable<Json>) completionChunks.push(chunk);
  assert.equal(completionChunks.at(-1).usage.completion_tokens, 2);
  assert.ok(completionChunks.slice(0, -1).every((c) => 'usage' in c && c.usage === null), 'completion chunks carry usage: null before (vLLM)');
});

test('--max-logprobs: 20 by default; -1 allows the whole vocabulary', async () => {
  const tooMany = await post(s.base, '/v1/completions', { prompt: 'x', max_tokens: 1, logprobs: 21 });
  assert.equal(tooMany.status, 400);
  assert.match(tooMany.body.error.message, /Requested sample logprobs of 21, which is greater than max allowed: 20/);
  const all = await post(s.base, '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], max_tokens: 1, logprobs: true, top_logprobs: -1 });
  assert.equal(all.status, 400, 'top_logprobs -1 is the whole vocabulary, over the default cap');

  const wide = await startServer({}, { maxLogprobs: -1 });
  try {
    const vocab = wide.engine.modelConfig.vocabSize;
    const chat = await post(wide.base, '/v1/chat/completions', { messages: [{ role: 'user', content: 'In the beginning' }], max_tokens: 2, temperature: 0, logprobs: true, top_logprobs: -1 });
    assert.equal(chat.status, 200, JSON.stringify(chat.body).slice(0, 300));
    for (const c of chat.body.choices[0].logprobs.content) {
      assert.equal(c.top_logprobs.length, vocab, 'every token of the vocabulary');
      const p = c.top_logprobs.reduce((a: number, t: Json) => a + Math.exp(t.logprob), 0);
      assert.ok(Math.abs(p - 1) < 1e-3, `the probabilities sum to 1 (${p})`);
    }
    const cmpl = await post(wide.base, '/v1/completions', { prompt: 'In the beginning', max_tokens: 1, temperature: 0, logprobs: -1, return_tokens_as_token_ids: true });
    assert.equal(cmpl.status, 200);
    assert.equal(Object.keys(cmpl.body.choices[0].logprobs.top_logprobs[0]).length, vocab);
    assert.equal((await post(wide.base, '/v1/completions', { prompt: 'x', max_tokens: 1, logprobs: 300 })).status, 200);
  } finally {
    await wide.server.close();
  }
});
