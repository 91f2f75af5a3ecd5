// Structured outputs over HTTP with the official openai client: response_format
// json_schema (strict) and json_object on chat, streamed and not; vLLM's
// structured_outputs and guided_* fields on completions; 400s naming the problem.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Ajv } from 'ajv';
import OpenAI from 'openai';
import { MODEL, startServer, type TestServer } from './helpers.js';

let s: TestServer;
let client: OpenAI;
const ajv = new Ajv({ strict: false });

const person = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 10 },
    age: { type: 'integer', minimum: 0, maximum: 120 },
    color: { enum: ['red', 'green'] },
    tags: { type: 'array', items: { type: 'string', maxLength: 5 }, maxItems: 2 },
  },
  required: ['name', 'age', 'color'],
  additionalProperties: false,
};

before(async () => {
  // NOTE: random-ish weights wander in whitespace when any is allowed; vLLM's setting keeps JSON compact.
  s = await startServer({}, { structuredOutputsConfig: { disableAnyWhitespace: true } });
  client = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  await s.server.close();
  await s.engine.shutdown();
});

const messages = [{ role: 'user' as const, content: 'Describe a person as JSON.' }];

test('chat: response_format json_schema gives schema-valid JSON, streamed and not', async () => {
  const response_format = { type: 'json_schema' as const, json_schema: { name: 'person', schema: person, strict: true } };
  for (const seed of [1, 2, 3]) {
    const r = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 150, temperature: 1, seed, response_format });
    assert.equal(r.choices[0]!.finish_reason, 'stop');
    const text = r.choices[0]!.message.content!;
    assert.ok(ajv.validate(person, JSON.parse(text)), `${text}: ${ajv.errorsText()}`);
    const stream = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 150, temperature: 1, seed, response_format, stream: true });
    let streamed = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      streamed += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(streamed, text, 'the stream carries the same seeded answer');
    assert.equal(finish, 'stop');
  }
});

test('chat: response_format json_object gives a JSON object or array', async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 200, temperature: 0.7, seed: 4, response_format: { type: 'json_object' } });
  assert.equal(r.choices[0]!.finish_reason, 'stop');
  assert.equal(typeof JSON.parse(r.choices[0]!.message.content!), 'object');
});

test('completions: structured_outputs and the guided_* names (regex, choice, grammar, json)', async () => {
  const cases: [Record<string, unknown>, (t: string) => boolean][] = [
    [{ structured_outputs: { regex: '[0-9]{3}-[a-z]{2,6}' } }, (t) => /^[0-9]{3}-[a-z]{2,6}$/.test(t)],
    [{ structured_outputs: { choice: ['light', 'darkness'] } }, (t) => ['light', 'darkness'].includes(t)],
    [{ guided_choice: ['yea', 'nay'] }, (t) => ['yea', 'nay'].includes(t)],
    [{ guided_regex: '(yes|no), [a-z]{1,5}' }, (t) => /^(yes|no), [a-z]{1,5}$/.test(t)],
    [{ guided_grammar: 'root ::= "son of " [A-Z] [a-z]{1,6}' }, (t) => /^son of [A-Z][a-z]{1,6}$/.test(t)],
    [{ guided_json: person }, (t) => ajv.validate(person, JSON.parse(t))],
  ];
  for (const [extra, ok] of cases) {
    const body = { model: MODEL, prompt: 'And God said', max_tokens: 120, temperature: 0.9, seed: 5, ...extra };
    const r = await client.completions.create(body as unknown as OpenAI.CompletionCreateParamsNonStreaming);
    const text = r.choices[0]!.text;
    assert.ok(ok(text), `${JSON.stringify(extra)} -> ${JSON.stringify(text)}`);
    assert.equal(r.choices[0]!.finish_reason, 'stop');
  }
});

test('bad structured-output requests are 400s that name the problem', async () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ structured_outputs: { regex: '[0-9' } }, /Regex parsing error.*Unclosed '\['/],
    [{ guided_grammar: 'root ::= (' }, /EBNF parser error/],
    [{ guided_json: { type: 'array', uniqueItems: true } }, /not supported by xgrammar: uniqueItems at #/],
    [{ structured_outputs: { json: { type: 'integer' }, regex: 'a' } }, /multiple are specified: json, regex/],
    [{ guided_regex: 'a+', response_format: { type: 'json_object' } }, /Only one of guided_\*, response_format/],
    [{ response_format: { type: 'xml' } }, /response_format type 'xml'/],
  ];
  for (const [extra, message] of bad) {
    await assert.rejects(
      client.completions.create({ model: MODEL, prompt: 'x', max_tokens: 5, ...extra } as unknown as OpenAI.CompletionCreateParamsNonStreaming),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.BadRequestError, `${JSON.stringify(extra)}: ${String(e)}`);
        assert.match(e.message, message);
        return true;
      },
    );
  }
  // The engine keeps serving.
  const ok = await client.completions.create({ model: MODEL, prompt: 'x', max_tokens: 3 });
  assert.equal(ok.choices.length, 1);
});
