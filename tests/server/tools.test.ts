// Tool calling over HTTP with the official openai client on the tiny model (a
// hermes-style chat template written for the test): named and "required" tool
// choices enforced by a grammar from the tools' schemas, auto tool choice read by
// the hermes parser, streamed deltas in OpenAI's format, tool results rendered
// through the template, and vLLM's 400s.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Ajv } from 'ajv';
import OpenAI from 'openai';
import { MODEL, startServer, type TestServer } from './helpers.js';

// A Qwen-like template: tools in the system turn, assistant tool calls as <tool_call> blocks, tool results in a user turn.
const TEMPLATE = [
  '{%- if tools %}<|im_start|>system\nTools:{% for t in tools %}\n{{ t.function.name }}: {{ t.function.description }}{% endfor %}<|im_end|>\n{%- endif %}',
  '{%- for m in messages %}',
  '{%- if m.role == "tool" %}<|im_start|>user\n<tool_response>{{ m.content }}</tool_response><|im_end|>\n',
  '{%- elif m.role == "assistant" and m.tool_calls %}<|im_start|>assistant\n{% for c in m.tool_calls %}<tool_call>{{ c.function.name }} {{ c.function.arguments.city }}</tool_call>{% endfor %}<|im_end|>\n',
  '{%- else %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{%- endif %}',
  '{%- endfor %}{%- if add_generation_prompt %}<|im_start|>assistant\n{%- endif %}',
].join('');

const weather = {
  type: 'object',
  properties: { city: { type: 'string', enum: ['Paris', 'Rome', 'Oslo'] }, days: { type: 'integer', minimum: 1, maximum: 7 } },
  required: ['city', 'days'],
  additionalProperties: false,
};
const time = { type: 'object', properties: { tz: { type: 'string', maxLength: 6 } }, required: ['tz'], additionalProperties: false };
const tools: OpenAI.ChatCompletionTool[] = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather forecast', parameters: weather } },
  { type: 'function', function: { name: 'get_time', description: 'Local time', parameters: time } },
];
const schemaOf: Record<string, object> = { get_weather: weather, get_time: time };
const messages = [{ role: 'user' as const, content: 'What is the weather in Paris?' }];
const ajv = new Ajv({ strict: false });

let s: TestServer;
let client: OpenAI;

before(async () => {
  s = await startServer({ enableAutoToolChoice: true, toolCallParser: 'hermes' }, { chatTemplate: TEMPLATE, structuredOutputsConfig: { disableAnyWhitespace: true } });
  client = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  await s.server.close();
  await s.engine.shutdown();
});

/** Joins a stream's tool-call deltas as OpenAI's SDK helpers do. */
async function collect(stream: AsyncIterable<OpenAI.ChatCompletionChunk>) {
  const calls: { id: string; name: string; arguments: string }[] = [];
  let content = '';
  let finish: string | null = null;
  for await (const chunk of stream) {
    const c = chunk.choices[0];
    if (!c) continue;
    content += c.delta.content ?? '';
    for (const tc of c.delta.tool_calls ?? []) {
      if (tc.id) calls[tc.index] = { id: tc.id, name: tc.function!.name!, arguments: tc.function?.arguments ?? '' };
      else calls[tc.index]!.arguments += tc.function?.arguments ?? '';
    }
    finish = c.finish_reason ?? finish;
  }
  return { calls, content, finish };
}

test('a named tool_choice gives that call with schema-valid arguments, streamed and not', async () => {
  const tool_choice = { type: 'function' as const, function: { name: 'get_weather' } };
  const r = await client.chat.completions.create({ model: MODEL, messages, tools, tool_choice, max_tokens: 60, temperature: 1, seed: 3 });
  const call = r.choices[0]!.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
  assert.equal(call.function.name, 'get_weather');
  assert.match(call.id, /^chatcmpl-tool-/);
  assert.ok(ajv.validate(weather, JSON.parse(call.function.arguments)), call.function.arguments);
  const st = await collect(await client.chat.completions.create({ model: MODEL, messages, tools, tool_choice, max_tokens: 60, temperature: 1, seed: 3, stream: true }));
  assert.equal(st.calls.length, 1);
  assert.equal(st.calls[0]!.name, 'get_weather');
  assert.equal(st.calls[0]!.arguments, call.function.arguments, 'the fragments join to the same arguments');
});

test('tool_choice "required": every call names a tool and its arguments match its schema; finish_reason tool_calls', async () => {
  // NOTE: parallel_tool_calls false caps the array at one call (random weights would rarely close a longer one).
  const body = { model: MODEL, messages, tools, tool_choice: 'required' as const, parallel_tool_calls: false, max_tokens: 200, temperature: 1, seed: 5 };
  for (const seed of [5, 6, 7]) {
    const r = await client.chat.completions.create({ ...body, seed });
    const calls = r.choices[0]!.message.tool_calls as OpenAI.ChatCompletionMessageFunctionToolCall[];
    assert.equal(r.choices[0]!.finish_reason, 'tool_calls');
    assert.equal(calls.length, 1);
    for (const c of calls) assert.ok(ajv.validate(schemaOf[c.function.name]!, JSON.parse(c.function.arguments)), `${c.function.name} ${c.function.arguments}`);
    const st = await collect(await client.chat.completions.create({ ...body, seed, stream: true }));
    assert.equal(st.finish, 'tool_calls');
    assert.deepEqual(st.calls.map((c) => [c.name, c.arguments]), calls.map((c) => [c.function.name, c.function.arguments]));
  }
});

test('auto tool choice: the hermes parser reads a <tool_call> block (forced here by a regex), streamed and not', async () => {
  const regex = 'Checking\\.\\n<tool_call>\\n\\{"name": "get_weather", "arguments": \\{"city": "(Paris|Rome)", "days": [1-7]\\}\\}\\n</tool_call>';
  const body = { model: MODEL, messages, tools, max_tokens: 200, temperature: 1, seed: 7, structured_outputs: { regex } };
  const r = await client.chat.completions.create(body as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming);
  const m = r.choices[0]!.message;
  assert.equal(r.choices[0]!.finish_reason, 'tool_calls');
  assert.equal(m.content, 'Checking.\n');
  const call = m.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
  assert.equal(call.function.name, 'get_weather');
  assert.ok(ajv.validate(weather, JSON.parse(call.function.arguments)));
  const st = await collect(await client.chat.completions.create({ ...body, stream: true } as unknown as OpenAI.ChatCompletionCreateParamsStreaming));
  assert.equal(st.content, 'Checking.\n');
  assert.equal(st.finish, 'tool_calls');
  assert.deepEqual(st.calls.map((c) => [c.name, c.arguments]), [[call.function.name, call.function.arguments]]);
  // Without tools the same text stays content.
  const plain = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 200, temperature: 1, seed: 7, structured_outputs: { regex } } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming);
  assert.match(plain.choices[0]!.message.content!, /<tool_call>/);
  assert.deepEqual(plain.choices[0]!.message.tool_calls ?? [], []);
});

test('tool results go through the chat template', async () => {
  const res = await fetch(`${s.base}/tokenize`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: MODEL,
      messages: [
        ...messages,
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris", "days": 2}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'sunny, 24 C' },
      ],
      tools,
      add_generation_prompt: true,
    }),
  });
  assert.equal(res.status, 200);
  const { tokens } = (await res.json()) as { tokens: number[] };
  const text = s.engine.tokenizer.decode(tokens);
  assert.match(text, /<tool_call>get_weather Paris<\/tool_call>/, 'the assistant call, arguments as an object');
  assert.match(text, /<tool_response>sunny, 24 C<\/tool_response>/);
  const r = await client.chat.completions.create({ model: MODEL, messages: [...messages,
    { role: 'assistant', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris", "days": 2}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: 'sunny, 24 C' }], tools, tool_choice: 'none', max_tokens: 5 });
  assert.equal(r.choices[0]!.message.tool_calls?.length ?? 0, 0);
});

test("vLLM's 400s for tool_choice", async () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ tools, tool_choice: { type: 'function', function: { name: 'nope' } } }, /Tool 'nope' has not been passed in `tools`/],
    [{ tool_choice: 'required' }, /When using `tool_choice`, `tools` must be set/],
    [{ tools, tool_choice: 'sometimes' }, /tool_choice must be/],
  ];
  for (const [extra, message] of bad) {
    await assert.rejects(client.chat.completions.create({ model: MODEL, messages, max_tokens: 5, ...extra } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming),
      (e: unknown) => e instanceof OpenAI.BadRequestError && message.test(e.message));
  }
  // "auto" needs the server flags.
  const other = await startServer({}, {});
  try {
    const c2 = new OpenAI({ baseURL: `${other.base}/v1`, apiKey: 'unused', maxRetries: 0 });
    await assert.rejects(c2.chat.completions.create({ model: MODEL, messages, tools, max_tokens: 5 }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && /"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser/.test(e.message));
  } finally {
    await other.server.close();
    await other.engine.shutdown();
  }
});
