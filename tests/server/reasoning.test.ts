// Reasoning output end to end (vLLM's --reasoning-parser qwen3), with the official
// openai client over loopback. No fixture tokenizer has <think>/</think>, so the test
// serves test-time copies of the trained tiny model whose tokenizer.json maps them, as
// added non-special tokens (as Qwen3's tokenizer.json has them), onto existing ids: the
// weights are unchanged. Every expected split comes from the raw text that the same
// server returns on /v1/completions for the same prompt ids: reasoning = the text before
// the first </think>, content = the text after it.
// - Chat Completions: </think> on a byte token the model never emits, made to appear
//   partway by a logit_bias found at test time.
// - Responses (which has no logit_bias): a second copy maps </think> onto a token that
//   the model's own greedy answer emits partway (its text then reads as </think>).
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Ajv } from 'ajv';
import OpenAI from 'openai';
import { MODEL, startServer, type TestServer } from './helpers.js';

// The byte tokens 0xFE and 0xFF: bytes that no UTF-8 text contains, so the trained
// model never emits them unbiased (`</think>` needs a logit_bias to appear).
const RARE_THINK = 189;
const RARE_END = 190;
const END = '</think>';
const messages = [{ role: 'user' as const, content: 'Recite John 3:16.' }];
const tmp = mkdtempSync(join(tmpdir(), 'vllm-ts-think-'));
const ajv = new Ajv({ strict: false });

after(() => rmSync(tmp, { recursive: true, force: true }));

/** A copy of the tiny model (weights linked, not copied) whose tokenizer decodes `think` / `end` as <think> / </think>. */
function thinkingCopy(name: string, think: number, end: number): string {
  const dir = join(tmp, name);
  cpSync(MODEL, dir, { recursive: true, filter: (f) => !f.endsWith('.safetensors') });
  symlinkSync(resolve(MODEL, 'model.safetensors'), join(dir, 'model.safetensors'));
  const tj = JSON.parse(readFileSync(join(MODEL, 'tokenizer.json'), 'utf8'));
  const added = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: false });
  tj.added_tokens.push(added(think, '<think>'), added(end, END));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tj));
  return dir;
}

async function post<T>(s: TestServer, path: string, body: unknown): Promise<T> {
  const r = await fetch(`${s.base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(r.status, 200, `${path}: ${r.status}`);
  return (await r.json()) as T;
}

interface Raw {
  text: string;
  tokenIds: number[];
  finish: string;
  reasoning: string;
  content: string | null;
}

/** The chat prompt's ids (the server's /tokenize), completed raw on /v1/completions, and split at the first </think>. */
async function rawCompletion(s: TestServer, extra: Record<string, unknown>, chatExtra: Record<string, unknown> = {}): Promise<Raw> {
  const { tokens } = await post<{ tokens: number[] }>(s, '/tokenize', { messages, add_generation_prompt: true, ...chatExtra });
  const body = { prompt: tokens, temperature: 0, return_token_ids: true, ...extra };
  const r = await post<{ choices: { text: string; token_ids: number[]; finish_reason: string }[] }>(s, '/v1/completions', body);
  const { text, token_ids, finish_reason } = r.choices[0]!;
  const i = text.indexOf(END);
  return { text, tokenIds: token_ids, finish: finish_reason, reasoning: i < 0 ? text : text.slice(0, i),
    content: i < 0 ? null : text.slice(i + END.length) || null };
}

type ReasoningDelta = { content?: string | null; reasoning_content?: string | null; reasoning?: string | null };

/** A chat stream's reasoning (from both field names) and content, and whether content ever came before reasoning. */
async function drain(stream: AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>) {
  let reasoningContent = '';
  let reasoning = '';
  let content = '';
  let contentBeforeReasoning = false;
  let finish: string | null = null;
  for await (const chunk of stream) {
    const d = (chunk.choices[0]?.delta ?? {}) as ReasoningDelta;
    if ((d.reasoning_content ?? '') !== '' && content !== '') contentBeforeReasoning = true;
    reasoningContent += d.reasoning_content ?? '';
    reasoning += d.reasoning ?? '';
    content += d.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  return { reasoningContent, reasoning, content, contentBeforeReasoning, finish };
}

describe('--reasoning-parser qwen3, </think> on a rare token id driven by logit_bias', () => {
  let s: TestServer;
  let client: OpenAI;
  let bias: Record<string, number>;
  let plain: Raw;

  before(async () => {
    // NOTE: compact JSON, as in structured_outputs.test.ts (the model wanders in whitespace when any is allowed).
    s = await startServer({}, { model: thinkingCopy('rare', RARE_THINK, RARE_END), reasoningParser: 'qwen3', structuredOutputsConfig: { disableAnyWhitespace: true } });
    client = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'unused', maxRetries: 0 });
    // The smallest bias (in steps of 2) under which greedy decoding emits </think> once, partway.
    for (let b = 0; b <= 100; b += 2) {
      const r = await rawCompletion(s, { max_tokens: 40, logit_bias: { [RARE_END]: b } });
      if (b === 0) assert.ok(!r.tokenIds.includes(RARE_END), 'unbiased, the model never emits the rare id');
      if (r.tokenIds.includes(RARE_END) && r.reasoning !== '' && r.content !== null && r.text.split(END).length === 2) {
        bias = { [RARE_END]: b };
        plain = r;
        break;
      }
    }
    assert.ok(plain, 'some logit_bias makes greedy decoding emit </think> partway');
  });

  after(async () => {
    await s.server.close();
    await s.engine.shutdown();
  });

  test('chat: reasoning_content and reasoning hold the text before </think>, content the text after', async () => {
    const r = await client.chat.completions.create({ model: s.engine.modelConfig.model, messages, max_tokens: 40, temperature: 0, logit_bias: bias });
    const m = r.choices[0]!.message as OpenAI.Chat.Completions.ChatCompletionMessage & ReasoningDelta;
    assert.equal(m.reasoning_content, plain.reasoning);
    assert.equal(m.reasoning, plain.reasoning);
    assert.equal(m.content, plain.content);
    assert.equal(r.choices[0]!.finish_reason, plain.finish);
  });

  test('chat stream: the deltas carry the same split, reasoning first', async () => {
    const stream = await client.chat.completions.create({ model: s.engine.modelConfig.model, messages, max_tokens: 40, temperature: 0, logit_bias: bias, stream: true });
    const d = await drain(stream);
    assert.equal(d.reasoningContent, plain.reasoning);
    assert.equal(d.reasoning, plain.reasoning);
    assert.equal(d.content, plain.content);
    assert.equal(d.contentBeforeReasoning, false);
    assert.equal(d.finish, plain.finish);
  });

  test('chat_template_kwargs enable_thinking false: the whole output is content, streamed and not', async () => {
    const extra = { chat_template_kwargs: { enable_thinking: false } };
    const r = await client.chat.completions.create({ model: s.engine.modelConfig.model, messages, max_tokens: 40, temperature: 0, logit_bias: bias, ...extra });
    const m = r.choices[0]!.message as OpenAI.Chat.Completions.ChatCompletionMessage & ReasoningDelta;
    assert.equal(m.content, plain.text);
    assert.equal(m.reasoning_content, null);
    const stream = await client.chat.completions.create({ model: s.engine.modelConfig.model, messages, max_tokens: 40, temperature: 0, logit_bias: bias, stream: true, ...extra });
    const d = await drain(stream);
    assert.equal(d.content, plain.text);
    assert.equal(d.reasoningContent, '');
  });

  const schema = {
    type: 'object',
    properties: { book: { enum: ['John', 'Genesis', 'Psalms'] }, verse: { type: 'integer', minimum: 1, maximum: 40 } },
    required: ['book', 'verse'],
    additionalProperties: false,
  };
  const response_format = { type: 'json_schema' as const, json_schema: { name: 'verse', schema, strict: true } };

  test('json_schema: the grammar starts after </think>: free reasoning, schema-valid content, streamed and not', async () => {
    const raw = await rawCompletion(s, { max_tokens: 80, logit_bias: bias, response_format });
    // Until </think> nothing constrains the tokens: the reasoning is the unconstrained one, not JSON.
    assert.equal(raw.reasoning, plain.reasoning);
    assert.throws(() => JSON.parse(raw.reasoning));
    assert.ok(raw.content !== null, `the grammar finished the answer: ${raw.text}`);
    assert.ok(ajv.validate(schema, JSON.parse(raw.content)), `${raw.content}: ${ajv.errorsText()}`);
    assert.equal(raw.finish, 'stop');

    const r = await client.chat.completions.create({ model: s.engine.modelConfig.model, messages, max_tokens: 80, temperature: 0, logit_bias: bias, response_format });
    const m = r.choices[0]!.message as OpenAI.Chat.Completions.ChatCompletionMessage & ReasoningDelta;
    assert.equal(m.reasoning_content, raw.reasoning);
    assert.equal(m.content, raw.content);
    const stream = await client.chat.completions.create({ model: s.engine.modelConfig.model, messages, max_tokens: 80, temperature: 0, logit_bias: bias, response_format, stream: true });
    const d = await drain(stream);
    assert.equal(d.reasoningContent, raw.reasoning);
    assert.equal(d.content, raw.content);
    assert.equal(d.finish, 'stop');
  });

  test('a named tool_choice: its grammar starts after </think>, the arguments parse against the tool, streamed and not', async () => {
    const parameters = { type: 'object', properties: { book: { enum: ['John', 'Luke'] }, chapter: { type: 'integer', minimum: 1, maximum: 21 } },
      required: ['book', 'chapter'], additionalProperties: false };
    const tools: OpenAI.ChatCompletionTool[] = [{ type: 'function', function: { name: 'find_verse', parameters } }];
    const tool_choice = { type: 'function' as const, function: { name: 'find_verse' } };
    // The same prompt (the template may render the tools) and the same grammar (the tool's parameters), raw.
    const raw = await rawCompletion(s, { max_tokens: 80, logit_bias: bias, structured_outputs: { json: parameters } }, { tools });
    assert.notEqual(raw.reasoning, '');
    assert.throws(() => JSON.parse(raw.reasoning), 'free text before </think>, not the grammar\'s JSON');
    assert.ok(raw.content !== null && ajv.validate(parameters, JSON.parse(raw.content)), `${raw.text}: ${ajv.errorsText()}`);
    const body = { model: s.engine.modelConfig.model, messages, tools, tool_choice, max_tokens: 80, temperature: 0, logit_bias: bias };
    const r = await client.chat.completions.create(body);
    const m = r.choices[0]!.message as OpenAI.Chat.Completions.ChatCompletionMessage & ReasoningDelta;
    assert.equal(m.reasoning_content, raw.reasoning);
    assert.equal(m.content, null);
    assert.deepEqual(m.tool_calls?.map((c) => [c.type === 'function' && c.function.name, c.type === 'function' && c.function.arguments]), [['find_verse', raw.content]]);
    let reasoning = '';
    let args = '';
    for await (const chunk of await client.chat.completions.create({ ...body, stream: true })) {
      const d = chunk.choices[0]?.delta as (ReasoningDelta & { tool_calls?: { function?: { arguments?: string } }[] }) | undefined;
      reasoning += d?.reasoning_content ?? '';
      args += d?.tool_calls?.map((c) => c.function?.arguments ?? '').join('') ?? '';
    }
    assert.equal(reasoning, raw.reasoning);
    assert.equal(args, raw.content);
  });

  test('json_schema without </think>: the grammar never starts, the whole output is reasoning', async () => {
    const raw = await rawCompletion(s, { max_tokens: 12, response_format });
    assert.equal(raw.content, null);
    assert.equal(raw.text, (await rawCompletion(s, { max_tokens: 12 })).text, 'the same tokens as without a grammar');
    assert.throws(() => JSON.parse(raw.text));
    const r = await client.chat.completions.create({ model: s.engine.modelConfig.model, messages, max_tokens: 12, temperature: 0, response_format });
    const m = r.choices[0]!.message as OpenAI.Chat.Completions.ChatCompletionMessage & ReasoningDelta;
    assert.equal(m.reasoning_content, raw.text);
    assert.equal(m.content, null);
    assert.equal(r.choices[0]!.finish_reason, 'length');
  });
});

describe('--reasoning-parser qwen3 on the Responses API, </think> on a token the greedy answer emits', () => {
  let s: TestServer;
  let client: OpenAI;
  let raw: Raw;
  const input = messages[0]!.content;

  before(async () => {
    // The unbiased greedy answer's ids (no think tokens in this copy yet): pick one that first appears mid-answer.
    const probe = await startServer({}, { model: thinkingCopy('probe', RARE_THINK, RARE_END) });
    let pick: number;
    let promptIds: number[];
    try {
      const r = await rawCompletion(probe, { max_tokens: 24 });
      promptIds = (await post<{ tokens: number[] }>(probe, '/tokenize', { messages, add_generation_prompt: true })).tokens;
      const ids = r.tokenIds;
      const at = ids.findIndex((id, p) => p >= ids.length / 3 && !ids.slice(0, p).includes(id) && !promptIds.includes(id));
      assert.ok(at > 0 && at < ids.length - 2, `a token first emitted mid-answer: ${ids}`);
      pick = ids[at]!;
    } finally {
      await probe.server.close();
      await probe.engine.shutdown();
    }
    s = await startServer({}, { model: thinkingCopy('natural', RARE_THINK, pick), reasoningParser: 'qwen3' });
    client = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'unused', maxRetries: 0 });
    raw = await rawCompletion(s, { max_tokens: 24 });
    assert.ok(raw.reasoning !== '' && raw.content !== null, `the answer splits: ${raw.text}`);
  });

  after(async () => {
    await s.server.close();
    await s.engine.shutdown();
  });

  test('responses: a reasoning item with the text before </think>, then the message with the text after', async () => {
    const r = await client.responses.create({ model: s.engine.modelConfig.model, input, max_output_tokens: 24, temperature: 0 });
    assert.deepEqual(r.output.map((o) => o.type), ['reasoning', 'message']);
    const [reasoning, message] = r.output as [OpenAI.Responses.ResponseReasoningItem, OpenAI.Responses.ResponseOutputMessage];
    assert.deepEqual(reasoning.content, [{ type: 'reasoning_text', text: raw.reasoning }]);
    assert.deepEqual(message.content.map((c) => (c as OpenAI.Responses.ResponseOutputText).text), [raw.content]);
    assert.equal(r.output_text, raw.content);
    assert.equal(r.status, raw.finish === 'length' ? 'incomplete' : 'completed');
  });

  test('responses stream: reasoning_text deltas, then output_text deltas; the final response has the same items', async () => {
    const stream = await client.responses.create({ model: s.engine.modelConfig.model, input, max_output_tokens: 24, temperature: 0, stream: true });
    let reasoning = '';
    let text = '';
    let textBeforeReasoning = false;
    let final: OpenAI.Responses.Response | null = null;
    for await (const e of stream) {
      if (e.type === 'response.reasoning_text.delta') {
        if (text !== '') textBeforeReasoning = true;
        reasoning += e.delta;
      }
      if (e.type === 'response.output_text.delta') text += e.delta;
      if (e.type === 'response.completed' || e.type === 'response.incomplete') final = e.response;
    }
    assert.equal(reasoning, raw.reasoning);
    assert.equal(text, raw.content);
    assert.equal(textBeforeReasoning, false);
    assert.ok(final);
    assert.deepEqual(final.output.map((o) => o.type), ['reasoning', 'message']);
    assert.deepEqual((final.output[0] as OpenAI.Responses.ResponseReasoningItem).content, [{ type: 'reasoning_text', text: raw.reasoning }]);
    assert.deepEqual((final.output[1] as OpenAI.Responses.ResponseOutputMessage).content.map((c) => (c as OpenAI.Responses.ResponseOutputText).text), [raw.content]);
  });
});
