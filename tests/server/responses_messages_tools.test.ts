// Tools on /v1/responses and /v1/messages with the official openai and
// @anthropic-ai/sdk clients on the tiny model (a hermes-style chat template
// written for the test): "required" / named choices enforced by the tools'
// schemas, function_call items and tool_use blocks, their streamed argument
// deltas joining to the whole answer, tool results rendered as the chat path
// renders them, and text.format json_schema through the structured-output engine.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { Ajv } from 'ajv';
import OpenAI from 'openai';
import { MessageBlockBuilder } from '../../src/entrypoints/anthropic/message_blocks.js';
import { ResponseOutputBuilder } from '../../src/entrypoints/openai/responses_output.js';
import { MODEL, startServer, type TestServer } from './helpers.js';

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
const schemaOf: Record<string, object> = { get_weather: weather, get_time: time };
const responseTools: OpenAI.Responses.FunctionTool[] = [
  { type: 'function', name: 'get_weather', description: 'Weather forecast', parameters: weather, strict: true },
  { type: 'function', name: 'get_time', description: 'Local time', parameters: time, strict: true },
];
const anthropicTools: Anthropic.Tool[] = [
  { name: 'get_weather', description: 'Weather forecast', input_schema: weather as Anthropic.Tool.InputSchema },
  { name: 'get_time', description: 'Local time', input_schema: time as Anthropic.Tool.InputSchema },
];
const ajv = new Ajv({ strict: false });
const greedy: {} = { temperature: 0 };

let s: TestServer;
let openai: OpenAI;
let anthropic: Anthropic;

before(async () => {
  s = await startServer({ enableAutoToolChoice: true, toolCallParser: 'hermes' }, { chatTemplate: TEMPLATE, structuredOutputsConfig: { disableAnyWhitespace: true } });
  openai = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'unused', maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: s.base, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  await s.server.close();
});

function checkArgs(name: string, args: unknown): void {
  assert.ok(name in schemaOf, name);
  assert.ok(ajv.validate(schemaOf[name], args), `${name} ${JSON.stringify(args)}: ${ajv.errorsText()}`);
}

test('responses: tool_choice "required" makes function_call items whose arguments fit the schema', async () => {
  const r = await openai.responses.create({ model: MODEL, input: 'What is the weather in Paris?', tools: responseTools, tool_choice: 'required', parallel_tool_calls: false, temperature: 0, max_output_tokens: 120 });
  // NOTE: parallel_tool_calls false caps the grammar's array at one call (the tiny model would repeat calls up to the limit).
  assert.equal(r.status, 'completed');
  const calls = r.output.filter((o) => o.type === 'function_call');
  assert.ok(calls.length >= 1, JSON.stringify(r.output));
  for (const c of calls) {
    assert.ok(c.type === 'function_call');
    assert.match(c.id ?? '', /^fc_/);
    assert.ok(c.call_id.length > 0);
    checkArgs(c.name, JSON.parse(c.arguments));
  }
});

test('responses stream: a named tool choice streams function_call_arguments deltas that join to the plain answer', async () => {
  const params = { model: MODEL, input: 'What is the weather in Paris?', tools: responseTools, tool_choice: { type: 'function' as const, name: 'get_weather' }, temperature: 0, max_output_tokens: 120 };
  const plain = await openai.responses.create(params);
  const call = plain.output.find((o) => o.type === 'function_call');
  assert.ok(call && call.type === 'function_call' && call.name === 'get_weather');
  checkArgs('get_weather', JSON.parse(call.arguments));

  const stream = await openai.responses.create({ ...params, stream: true });
  let deltas = '';
  const types: string[] = [];
  let done = null as { arguments: string; name: string } | null;
  let added = null as { name: string; arguments: string } | null;
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === 'response.output_item.added' && ev.item.type === 'function_call') added = ev.item;
    if (ev.type === 'response.function_call_arguments.delta') deltas += ev.delta;
    if (ev.type === 'response.function_call_arguments.done') done = ev;
  }
  assert.ok(added && added.name === 'get_weather' && added.arguments === '');
  assert.ok(done);
  assert.equal(done.arguments, deltas);
  assert.equal(done.name, 'get_weather');
  assert.equal(deltas, call.arguments);
  assert.ok(types.indexOf('response.function_call_arguments.done') < types.indexOf('response.output_item.done'));
  assert.equal(types.at(-1), 'response.completed');
});

test('responses: function_call and function_call_output items render as chat completions renders tool calls and results', async () => {
  const args = JSON.stringify({ city: 'Rome', days: 2 });
  const r = await openai.responses.create({
    model: MODEL,
    temperature: 0,
    max_output_tokens: 16,
    input: [
      { role: 'user', content: 'Weather in Rome?' },
      { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: args },
      { type: 'function_call_output', call_id: 'call_1', output: 'Sunny, 25C' },
    ],
  });
  const chat = await openai.chat.completions.create({
    model: MODEL,
    temperature: 0,
    max_tokens: 16,
    messages: [
      { role: 'user', content: 'Weather in Rome?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: args } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'Sunny, 25C' },
    ],
  });
  assert.equal(r.output_text, chat.choices[0].message.content);
  assert.equal(r.usage?.input_tokens, chat.usage?.prompt_tokens);
});

test('responses: text.format json_schema constrains the answer to the schema', async () => {
  const r = await openai.responses.create({
    model: MODEL,
    input: 'Give a forecast.',
    temperature: 0,
    max_output_tokens: 120,
    text: { format: { type: 'json_schema', name: 'forecast', schema: weather, strict: true } },
  });
  assert.equal(r.status, 'completed');
  checkArgs('get_weather', JSON.parse(r.output_text));
  const bad = await fetch(`${s.base}/v1/responses`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, input: 'x', text: { format: { type: 'json_schema', name: 'f' } } }),
  });
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { error: { message: string } }).error.message, /schema/);
});

test('messages: tool_choice any makes tool_use blocks (stop_reason tool_use); the stream\'s input_json_delta joins to the same input', async () => {
  const params = { model: MODEL, max_tokens: 120, ...greedy, tools: anthropicTools, tool_choice: { type: 'tool' as const, name: 'get_weather' }, messages: [{ role: 'user' as const, content: 'Weather in Oslo?' }] };
  const m = await anthropic.messages.create(params);
  assert.equal(m.stop_reason, 'tool_use');
  const use = m.content.find((b) => b.type === 'tool_use');
  assert.ok(use && use.type === 'tool_use' && use.name === 'get_weather');
  assert.match(use.id, /^toolu_/);
  checkArgs('get_weather', use.input);

  const stream = anthropic.messages.stream(params);
  let json = '';
  stream.on('inputJson', (delta) => (json += delta));
  const final = await stream.finalMessage();
  const streamed = final.content.find((b) => b.type === 'tool_use');
  assert.ok(streamed && streamed.type === 'tool_use');
  assert.deepEqual(streamed.input, use.input);
  assert.deepEqual(JSON.parse(json), use.input);
  assert.equal(final.stop_reason, 'tool_use');

  const any = await anthropic.messages.create({ ...params, tool_choice: { type: 'any', disable_parallel_tool_use: true } });
  assert.equal(any.content.filter((b) => b.type === 'tool_use').length, 1);
  assert.equal(any.stop_reason, 'tool_use');
  for (const b of any.content) if (b.type === 'tool_use') checkArgs(b.name, b.input);
});

test('messages: tool_use and tool_result blocks render as chat completions renders tool calls and results; count_tokens agrees', async () => {
  const messages: Anthropic.MessageParam[] = [
    { role: 'user', content: 'Weather in Rome?' },
    { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Rome', days: 2 } }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'Sunny, 25C' }] },
  ];
  const m = await anthropic.messages.create({ model: MODEL, max_tokens: 16, ...greedy, messages });
  const chat = await openai.chat.completions.create({
    model: MODEL,
    temperature: 0,
    max_tokens: 16,
    messages: [
      { role: 'user', content: 'Weather in Rome?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Rome","days":2}' } }] },
      { role: 'tool', tool_call_id: 'toolu_1', content: 'Sunny, 25C' },
    ],
  });
  assert.equal(m.content[0].type === 'text' && m.content[0].text, chat.choices[0].message.content);
  const count = await anthropic.messages.countTokens({ model: MODEL, messages });
  assert.equal(count.input_tokens, chat.usage?.prompt_tokens);
});

test('output builders: reasoning, text and a call become items / blocks in order, each closed before the next opens', async () => {
  // NOTE: the builders alone; tests/server/reasoning.test.ts drives --reasoning-parser end to end.
  const events: [string, Record<string, unknown>][] = [];
  const output: never[] = [];
  const b = new ResponseOutputBuilder(output, async (type, fields) => void events.push([type, fields]));
  await b.reasoning('let me ');
  await b.reasoning('think');
  await b.text('Paris');
  await b.call({ index: 0, id: 'call_9', name: 'get_weather', arguments: '{"city":' });
  await b.call({ index: 0, arguments: '"Paris"}' });
  await b.close('completed');
  const items = output as unknown as { type: string; status: string; content?: { text: string }[]; arguments?: string; call_id?: string }[];
  assert.deepEqual(items.map((i) => i.type), ['reasoning', 'message', 'function_call']);
  assert.equal(items[0].content?.[0].text, 'let me think');
  assert.equal(items[1].content?.[0].text, 'Paris');
  assert.equal(items[2].arguments, '{"city":"Paris"}');
  assert.equal(items[2].call_id, 'call_9');
  assert.ok(items.every((i) => i.status === 'completed'));
  const types = events.map(([t]) => t);
  assert.deepEqual(types.filter((t) => t === 'response.output_item.added' || t === 'response.output_item.done'),
    ['response.output_item.added', 'response.output_item.done', 'response.output_item.added', 'response.output_item.done', 'response.output_item.added', 'response.output_item.done']);
  assert.equal(types.filter((t) => t === 'response.reasoning_text.delta').length, 2);
  assert.deepEqual(events.find(([t]) => t === 'response.function_call_arguments.done')?.[1], { item_id: (output[2] as { id: string }).id, output_index: 2, name: 'get_weather', arguments: '{"city":"Paris"}' });

  const sent: string[] = [];
  const m = new MessageBlockBuilder(async (type, fields) => void sent.push(`${type}:${(fields.delta as { type?: string } | undefined)?.type ?? fields.index}`));
  await m.thinking('hmm');
  await m.text('Paris');
  await m.toolCall(0, 'get_weather', '{"city":"Par');
  await m.toolCall(0, undefined, 'is"}');
  await m.close();
  assert.deepEqual(m.blocks.map((x) => x.type), ['thinking', 'text', 'tool_use']);
  assert.deepEqual((m.blocks[2] as { input: unknown }).input, { city: 'Paris' });
  assert.deepEqual(sent, ['content_block_start:0', 'content_block_delta:thinking_delta', 'content_block_stop:0', 'content_block_start:1', 'content_block_delta:text_delta',
    'content_block_stop:1', 'content_block_start:2', 'content_block_delta:input_json_delta', 'content_block_delta:input_json_delta', 'content_block_stop:2']);
  assert.ok(m.usedTools);
});
