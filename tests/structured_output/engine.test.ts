// Structured outputs through the offline engine on the tiny model: 200 requests
// with varied JSON schemas in one batch, all schema-valid (ajv); regex and choice
// outputs match; an unconstrained request sharing the batch is unchanged.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Ajv } from 'ajv';
import { LLM } from '../../src/index.js';
import { randomSchema, rng } from './schemas.js';

let llm: LLM;

before(async () => {
  llm = await LLM.create({ model: 'models/tiny-llama-kjv', useTqdm: false });
});

after(() => llm.close());

test('200 requests with varied JSON schemas all produce schema-valid JSON', async () => {
  const r = rng(7);
  const schemas = Array.from({ length: 200 }, () => randomSchema(r));
  const outs = await llm.generate(
    schemas.map((_, i) => `Request ${i}: And God said`),
    schemas.map((json, i) => ({ maxTokens: 256, temperature: 1, seed: i, structuredOutputs: { json, disableAnyWhitespace: true } })),
  );
  const ajv = new Ajv({ strict: false });
  const bad: string[] = [];
  outs.forEach((o, i) => {
    const text = o.outputs[0].text;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      bad.push(`${i} (${o.outputs[0].finishReason}): not JSON: ${text.slice(0, 80)}`);
      return;
    }
    if (!ajv.validate(schemas[i], value)) bad.push(`${i}: ${text} ${ajv.errorsText()}`);
  });
  assert.deepEqual(bad, []);
  const core = llm.engine.engineCore;
  assert.equal(core.numFreeBlocks, core.cacheConfig.numBlocks - 1, 'every KV block is free again');
});

test('regex and choice outputs match; an unconstrained request in the same batch is unchanged', async () => {
  const alone = await llm.generate(['In the beginning'], { temperature: 0, maxTokens: 24 });
  const outs = await llm.generate(['In the beginning', 'And God said', 'The LORD is', 'Whose son?'], [
    { temperature: 0, maxTokens: 24 },
    { temperature: 0.8, seed: 3, maxTokens: 30, structuredOutputs: { regex: '[0-9]{3}-[a-z]{2,6}' } },
    { temperature: 1, seed: 4, maxTokens: 10, structuredOutputs: { choice: ['light', 'darkness', 'the firmament'] } },
    { temperature: 1, seed: 5, maxTokens: 40, structuredOutputs: { grammar: 'root ::= "son of " name\nname ::= [A-Z] [a-z]{1,6}' } },
  ]);
  assert.deepEqual(outs[0].outputs[0].tokenIds, alone[0].outputs[0].tokenIds);
  assert.match(outs[1].outputs[0].text, /^[0-9]{3}-[a-z]{2,6}$/);
  assert.ok(['light', 'darkness', 'the firmament'].includes(outs[2].outputs[0].text), outs[2].outputs[0].text);
  assert.match(outs[3].outputs[0].text, /^son of [A-Z][a-z]{1,6}$/);
  for (const o of outs.slice(1)) assert.equal(o.outputs[0].finishReason, 'stop');
});

test('json_object: each output is a JSON object or array ended by the grammar (EOS)', async () => {
  const outs = await llm.generate(['And God said', 'And God said', 'In the beginning', 'The LORD is'], [0, 1, 2, 3].map((seed) => ({
    temperature: 0.7, seed, maxTokens: 200, structuredOutputs: { jsonObject: true },
  })));
  for (const o of outs) {
    assert.equal(o.outputs[0].finishReason, 'stop', o.outputs[0].text);
    const v = JSON.parse(o.outputs[0].text) as unknown;
    assert.equal(typeof v, 'object');
    assert.notEqual(v, null);
  }
});

test('structural_tag: a constant prefix then a JSON schema (xgrammar structural tag format)', async () => {
  const ok = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'], additionalProperties: false };
  const structuralTag = {
    type: 'structural_tag',
    format: { type: 'sequence', elements: [{ type: 'const_string', value: 'Answer: ' }, { type: 'json_schema', json_schema: ok }] },
  };
  const outs = await llm.generate(['And God said', 'In the beginning'], [1, 2].map((seed) => ({ temperature: 1, seed, maxTokens: 300, structuredOutputs: { structuralTag } })));
  for (const o of outs) {
    const text = o.outputs[0].text;
    assert.ok(text.startsWith('Answer: '), text);
    assert.equal(typeof (JSON.parse(text.slice('Answer: '.length)) as { ok: unknown }).ok, 'boolean', text);
  }
});
