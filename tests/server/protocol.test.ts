// Unit tests of the server's pieces that need no engine: request schemas, error
// shapes, logprob formats, the output stream of AsyncLLM, benchmark statistics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChatCompletionRequestSchema, CompletionRequestSchema } from '../../src/entrypoints/openai/protocol.js';
import { toErrorInfo, zodErrorToHttp } from '../../src/entrypoints/openai/http.js';
import { chatLogprobs, completionLogprobs } from '../../src/entrypoints/openai/logprobs.js';
import { toChatMessages } from '../../src/entrypoints/openai/serving_chat.js';
import { mergeAsyncIterators } from '../../src/entrypoints/openai/serving_engine.js';
import { EngineDeadError, InvalidRequestError, NotFoundError } from '../../src/errors.js';
import { RequestStream } from '../../src/engine/request_stream.js';
import { lengthBuckets } from '../../src/metrics/prometheus.js';
import { calculateMetrics, percentile, poissonIntervals, seededRandom, summarize } from '../../src/metrics/serving_benchmark.js';
import type { Logprob, RequestOutput } from '../../src/outputs.js';
import { SamplingParams } from '../../src/sampling_params.js';
import type { Tokenizer } from '../../src/tokenizer/tokenizer.js';

const fakeTokenizer = { decode: (ids: number[]) => ids.map((i) => `<${i}>`).join('') } as unknown as Tokenizer;

test('completion schema: unknown fields are dropped, absent and null max_tokens differ', () => {
  const a = CompletionRequestSchema.parse({ prompt: 'x', foo: 1, nested: { a: [1] } });
  assert.equal('foo' in a, false);
  assert.equal(a.max_tokens, undefined);
  assert.equal(CompletionRequestSchema.parse({ prompt: 'x', max_tokens: null }).max_tokens, null);
  for (const prompt of ['s', ['a', 'b'], [1, 2], [[1], [2, 3]]]) assert.ok(CompletionRequestSchema.safeParse({ prompt }).success);
  assert.equal(CompletionRequestSchema.safeParse({ prompt: [1, 'a'] }).success, false);
  assert.equal(CompletionRequestSchema.safeParse({ prompt: 'x', n: 1.5 }).success, false);
  // Seeds past 2^53 are integers to vLLM (its bound is 64-bit, checked in request_fields.ts); fractions are not.
  assert.equal(CompletionRequestSchema.safeParse({ prompt: 'x', seed: 2 ** 60 }).success, true);
  assert.equal(CompletionRequestSchema.safeParse({ prompt: 'x', seed: 1.5 }).success, false);
});

test('a wrong type becomes a 400 naming the field', () => {
  const raw = { messages: [{ role: 'user', content: 'hi' }], temperature: 'hot' };
  const r = ChatCompletionRequestSchema.safeParse(raw);
  assert.equal(r.success, false);
  const info = toErrorInfo(zodErrorToHttp(r.error!, raw));
  assert.equal(info.code, 400);
  assert.equal(info.param, 'temperature');
  assert.match(info.message, /temperature.*expected number, received string/);
  const raw2 = { prompt: 5 };
  const r2 = CompletionRequestSchema.safeParse(raw2);
  assert.match(zodErrorToHttp(r2.error!, raw2).message, /expected string or array, received number/);
});

test('errors map to OpenAI error bodies with vLLM status codes', () => {
  assert.deepEqual(toErrorInfo(new InvalidRequestError('bad', 'prompt')), { message: 'bad', type: 'BadRequestError', param: 'prompt', code: 400 });
  assert.equal(toErrorInfo(new NotFoundError('nope')).code, 404);
  assert.equal(toErrorInfo(new EngineDeadError('dead')).code, 500);
  const sp = (() => {
    try {
      SamplingParams.create({ topP: 3 });
    } catch (e) {
      return e;
    }
  })();
  assert.deepEqual({ ...toErrorInfo(sp), message: '' }, { message: '', type: 'BadRequestError', param: 'top_p', code: 400 });
  const other = toErrorInfo(new TypeError('boom'));
  assert.equal(other.code, 500);
  assert.equal(other.type, 'InternalServerError');
});

const lp = (logprob: number, rank: number, decodedToken: string): Logprob => ({ logprob, rank, decodedToken });

test('completion logprobs: chosen token first, then the top-n by rank; offsets in code points', () => {
  // position 0: a prompt token without logprobs; 1: chosen 7 (rank 2), top-2 = {5, 7}; 2: chosen 9 not in the top-1.
  const steps: (Record<number, Logprob> | null)[] = [null, { 5: lp(-0.1, 1, 'a'), 7: lp(-2, 2, 'é') }, { 3: lp(-0.5, 1, 'c'), 9: lp(-Infinity, 40, 'd') }];
  const out = completionLogprobs([4, 7, 9], steps, 1, fakeTokenizer, 10);
  assert.deepEqual(out.tokens, ['<4>', 'é', 'd']);
  assert.deepEqual(out.token_logprobs, [null, -2, -9999]);
  assert.deepEqual(out.top_logprobs, [null, { é: -2, a: -0.1 }, { d: -9999, c: -0.5 }]);
  assert.deepEqual(out.text_offset, [10, 13, 14]);
  assert.deepEqual(Object.keys(out.top_logprobs[1]!), ['é', 'a']);
});

test('chat logprobs: token, logprob, UTF-8 bytes, and the top-n by rank', () => {
  const steps = [{ 5: lp(-0.1, 1, 'a'), 7: lp(-2, 3, 'é'), 8: lp(-1, 2, 'b') }];
  const [c] = chatLogprobs([7], steps, 2, fakeTokenizer);
  assert.deepEqual(c, {
    token: 'é',
    logprob: -2,
    bytes: [0xc3, 0xa9],
    top_logprobs: [
      { token: 'a', logprob: -0.1, bytes: [97] },
      { token: 'b', logprob: -1, bytes: [98] },
    ],
  });
});

test('chat content parts are joined as text; other parts are refused', () => {
  const msgs = toChatMessages([{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }]);
  assert.equal(msgs[0].content, 'a\nb');
  assert.throws(() => toChatMessages([{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }]), /text-only/);
});

function output(text: string, tokenIds: number[], finished: boolean): RequestOutput {
  return {
    requestId: 'r',
    prompt: null,
    promptTokenIds: [1],
    promptLogprobs: null,
    outputs: [{ index: 0, text, tokenIds, cumulativeLogprob: null, logprobs: null, finishReason: finished ? 'stop' : null, stopReason: null }],
    finished,
    numCachedTokens: 0,
  };
}

test('RequestStream merges deltas a slow consumer has not read, and ends after the final output', async () => {
  let exits = 0;
  const s = new RequestStream('r', ['r'], true, () => exits++);
  s.push(output('a', [1], false));
  s.push(output('b', [2], false));
  s.push(output('c', [3], true));
  const first = await s.next();
  assert.equal(first.done, false);
  assert.equal(first.value!.outputs[0].text, 'abc');
  assert.deepEqual(first.value!.outputs[0].tokenIds, [1, 2, 3]);
  assert.equal(first.value!.finished, true);
  assert.equal((await s.next()).done, true);
  assert.equal(exits, 0);
});

test('RequestStream: breaking out early aborts, an error reaches the consumer', async () => {
  let exits = 0;
  const s = new RequestStream('r', ['r'], true, () => exits++);
  s.push(output('a', [1], false));
  for await (const _ of s) break;
  assert.equal(exits, 1);
  // return() before any next() also aborts (an async generator would not run its finally).
  const t = new RequestStream('t', ['t'], true, () => exits++);
  await t.return();
  assert.equal(exits, 2);
  const u = new RequestStream('u', ['u'], false, () => exits++);
  const pending = u.next();
  u.fail(new EngineDeadError('gone'));
  await assert.rejects(pending, EngineDeadError);
  assert.equal(exits, 2);
});

test('mergeAsyncIterators interleaves and tags by source', async () => {
  async function* gen(tag: string, n: number) {
    for (let i = 0; i < n; i++) {
      await new Promise((r) => setTimeout(r, 1));
      yield `${tag}${i}`;
    }
  }
  const seen: [number, string][] = [];
  for await (const v of mergeAsyncIterators([gen('a', 3), gen('b', 2)])) seen.push(v);
  assert.equal(seen.length, 5);
  assert.deepEqual(seen.filter(([i]) => i === 0).map(([, v]) => v), ['a0', 'a1', 'a2']);
  assert.deepEqual(seen.filter(([i]) => i === 1).map(([, v]) => v), ['b0', 'b1']);
});

test("lengthBuckets are vLLM's 1-2-5 series", () => {
  assert.deepEqual(lengthBuckets(512), [1, 2, 5, 10, 20, 50, 100, 200, 500]);
});

test('benchmark statistics follow numpy (linear percentiles, population std)', () => {
  assert.equal(percentile([1, 2, 3, 4], 50), 2.5);
  assert.ok(Math.abs(percentile([1, 2, 3, 4], 99) - 3.97) < 1e-12);
  const s = summarize([0.001, 0.002, 0.003, 0.004], [99]);
  assert.ok(Math.abs(s.mean - 2.5) < 1e-9);
  assert.ok(Math.abs(s.std - Math.sqrt(1.25)) < 1e-9);
  assert.ok(Math.abs(s.percentiles['99'] - 3.97) < 1e-9);
  const m = calculateMetrics(
    [
      { success: true, error: '', promptLen: 10, outputTokens: 5, ttft: 0.1, itl: [0.05, 0.05], latency: 0.3, generatedText: '' },
      { success: false, error: 'x', promptLen: 10, outputTokens: 0, ttft: 0, itl: [], latency: 0, generatedText: '' },
    ],
    2,
    [99],
  );
  assert.equal(m.completed, 1);
  assert.equal(m.failed, 1);
  assert.equal(m.requestThroughput, 0.5);
  assert.equal(m.totalTokenThroughput, 7.5);
  assert.ok(Math.abs(m.tpot.mean - 50) < 1e-9); // (0.3 - 0.1) / (5 - 1) s
});

test('Poisson intervals have mean 1 / rate; inf sends all at once', () => {
  const gaps = poissonIntervals(20000, 4, seededRandom(1));
  const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
  assert.ok(Math.abs(mean - 0.25) < 0.01, `mean ${mean}`);
  assert.deepEqual(poissonIntervals(3, Infinity, Math.random), [0, 0, 0]);
});
