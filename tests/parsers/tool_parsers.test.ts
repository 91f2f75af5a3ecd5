// Tool-call and reasoning parsers on texts in the formats the models write
// (Qwen2.5/Qwen3 hermes blocks, Llama 3.1 JSON, Mistral [TOOL_CALLS] in both
// tokenizer versions, Qwen3 / DeepSeek-R1 think blocks): whole outputs, and the
// same texts streamed in uneven pieces, whose deltas must join to the whole answer.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RequiredToolCallsParser, toolParserFor, type ToolParser } from '../../src/entrypoints/openai/tool_parsers/index.js';
import { reasoningParserFor } from '../../src/entrypoints/openai/reasoning_parsers/reasoning_parser.js';

interface Case {
  parser: string;
  text: string;
  content: string | null;
  calls: { name: string; arguments: unknown }[];
}

const CASES: Case[] = [
  {
    parser: 'hermes',
    text: 'Let me check the weather for you.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>',
    content: 'Let me check the weather for you.\n',
    calls: [{ name: 'get_weather', arguments: { city: 'Paris', unit: 'celsius' } }],
  },
  {
    parser: 'hermes',
    text: '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Tokyo"}}\n</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": {"tz": "Asia/Tokyo", "nested": {"a": [1, 2, "}"]}}}\n</tool_call>',
    content: null,
    calls: [
      { name: 'get_weather', arguments: { city: 'Tokyo' } },
      { name: 'get_time', arguments: { tz: 'Asia/Tokyo', nested: { a: [1, 2, '}'] } } },
    ],
  },
  { parser: 'hermes', text: 'The answer is 42; no tool needed.', content: 'The answer is 42; no tool needed.', calls: [] },
  {
    parser: 'hermes',
    text: '<tool_call>\n{"name": "broken", "arguments": {"x": 1\n</tool_call>',
    content: '<tool_call>\n{"name": "broken", "arguments": {"x": 1\n</tool_call>',
    calls: [],
  },
  {
    parser: 'llama3_json',
    text: '{"name": "get_current_conditions", "parameters": {"location": "San Francisco, CA", "unit": "Fahrenheit"}}',
    content: null,
    calls: [{ name: 'get_current_conditions', arguments: { location: 'San Francisco, CA', unit: 'Fahrenheit' } }],
  },
  {
    parser: 'llama3_json',
    text: '<|python_tag|>{"name": "search", "parameters": {"q": "vllm"}}; {"name": "search", "parameters": {"q": "xgrammar \\"wasm\\""}}',
    content: null,
    calls: [
      { name: 'search', arguments: { q: 'vllm' } },
      { name: 'search', arguments: { q: 'xgrammar "wasm"' } },
    ],
  },
  { parser: 'llama3_json', text: 'I cannot call a tool for that.', content: 'I cannot call a tool for that.', calls: [] },
  {
    parser: 'mistral',
    text: '[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Berlin"}}, {"name": "add", "arguments": {"a": 1, "b": 2}}]',
    content: null,
    calls: [
      { name: 'get_weather', arguments: { city: 'Berlin' } },
      { name: 'add', arguments: { a: 1, b: 2 } },
    ],
  },
  {
    parser: 'mistral',
    text: 'Sure.[TOOL_CALLS]get_weather[ARGS]{"city": "Rome"}[TOOL_CALLS]add{"a": 3, "b": 4}',
    content: 'Sure.',
    calls: [
      { name: 'get_weather', arguments: { city: 'Rome' } },
      { name: 'add', arguments: { a: 3, b: 4 } },
    ],
  },
];

/** Splits `text` into pieces of 1..7 characters (a deterministic, uneven stream). */
function pieces(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  let k = 3;
  while (i < text.length) {
    k = (k * 5 + 1) % 7;
    out.push(text.slice(i, i + 1 + k));
    i += 1 + k;
  }
  return out;
}

function stream(p: ToolParser, text: string) {
  let content = '';
  const calls: { id: string; name: string; args: string }[] = [];
  let soFar = '';
  const parts = pieces(text);
  parts.forEach((piece, n) => {
    soFar += piece;
    const d = p.extractToolCallsStreaming(soFar, n === parts.length - 1);
    if (!d) return;
    content += d.content ?? '';
    for (const tc of d.toolCalls ?? []) {
      if (tc.id !== undefined) {
        assert.equal(tc.index, calls.length, 'calls are announced in order');
        assert.equal(tc.type, 'function');
        assert.ok(tc.function.name, 'the first delta of a call names it');
        calls.push({ id: tc.id, name: tc.function.name!, args: tc.function.arguments });
      } else {
        assert.equal(tc.function.name, undefined, 'later deltas carry only arguments');
        calls[tc.index]!.args += tc.function.arguments;
      }
    }
  });
  return { content, calls };
}

for (const c of CASES) {
  test(`${c.parser}: ${JSON.stringify(c.text.slice(0, 48))}…`, () => {
    const whole = toolParserFor(c.parser).extractToolCalls(c.text);
    assert.equal(whole.toolsCalled, c.calls.length > 0);
    assert.equal(whole.content, c.content ?? (c.calls.length ? null : c.text));
    assert.deepEqual(whole.toolCalls.map((t) => ({ name: t.function.name, arguments: JSON.parse(t.function.arguments) })), c.calls);
    for (const t of whole.toolCalls) assert.match(t.id, c.parser === 'mistral' ? /^[A-Za-z0-9]{9}$/ : /^chatcmpl-tool-[0-9a-f]{32}$/);
    if (c.calls.length === 0 || c.parser === 'hermes' && c.text.includes('broken')) return;
    const s = stream(toolParserFor(c.parser), c.text);
    assert.equal(s.content, c.content ?? '', 'streamed content');
    assert.deepEqual(s.calls.map((t) => t.name), c.calls.map((t) => t.name));
    // The streamed fragments join to the same arguments text as the whole answer.
    assert.deepEqual(s.calls.map((t) => t.args), whole.toolCalls.map((t) => t.function.arguments));
  });
}

test('tool_choice "required": the grammar-made array parses whole and streamed', () => {
  const text = '[{"name": "get_weather", "parameters": {"city": "Oslo"}}, {"name": "get_time", "parameters": {}}]';
  const whole = new RequiredToolCallsParser().extractToolCalls(text);
  assert.deepEqual(whole.toolCalls.map((t) => [t.function.name, JSON.parse(t.function.arguments)]), [['get_weather', { city: 'Oslo' }], ['get_time', {}]]);
  const s = stream(new RequiredToolCallsParser(), text);
  assert.deepEqual(s.calls.map((t) => [t.name, t.args]), whole.toolCalls.map((t) => [t.function.name, t.function.arguments]));
});

test('reasoning parsers: qwen3 and deepseek_r1, whole and streamed', () => {
  // qwen3 as vLLM's current parser: before </think> is reasoning, <think> or not (Qwen3.5's
  // template opens the block in the prompt); no </think> is reasoning cut short, unless
  // enable_thinking is false (then it is all content).
  const cases: [string, string, string | null, string | null, boolean?][] = [
    ['qwen3', '<think>\nThe user wants 2+2. That is 4.\n</think>\n\nThe answer is 4.', '\nThe user wants 2+2. That is 4.\n', '\n\nThe answer is 4.'],
    ['qwen3', 'The user wants 4.\n</think>\n\nThe answer is 4.', 'The user wants 4.\n', '\n\nThe answer is 4.'],
    ['qwen3', 'Cut off while thinking', 'Cut off while thinking', null],
    ['qwen3', 'The answer is 4.', null, 'The answer is 4.', false],
    ['qwen3', 'A stray </think> stays text.', null, 'A stray </think> stays text.', false],
    ['qwen3', '<think>\nStill thinking when max_tokens hit', '\nStill thinking when max_tokens hit', null],
    ['qwen3', '<think>x</think>', 'x', null],
    ['deepseek_r1', 'Okay, 2+2 is 4.\n</think>\n\n**4**', 'Okay, 2+2 is 4.\n', '\n\n**4**'],
    ['deepseek_r1', '<think>Hmm.</think>Done', 'Hmm.', 'Done'],
    ['deepseek_r1', 'only thinking, cut off', 'only thinking, cut off', null],
  ];
  for (const [name, text, reasoning, content, thinkingEnabled] of cases) {
    assert.deepEqual(reasoningParserFor(name, { thinkingEnabled }).extract(text), { reasoning, content }, `${name}: ${text}`);
    const p = reasoningParserFor(name, { thinkingEnabled });
    let r = '';
    let c = '';
    let soFar = '';
    const parts = pieces(text);
    parts.forEach((piece, n) => {
      soFar += piece;
      const d = p.extractStreaming(soFar, n === parts.length - 1);
      r += d?.reasoning ?? '';
      c += d?.content ?? '';
    });
    assert.equal(r, reasoning ?? '', `${name} streamed reasoning of ${JSON.stringify(text)}`);
    assert.equal(c, content ?? '', `${name} streamed content of ${JSON.stringify(text)}`);
  }
});
