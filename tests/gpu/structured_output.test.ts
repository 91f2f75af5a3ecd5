// Structured outputs on CUDA: the step's bitmask is applied on the device before
// vt_sample; JSON-schema, regex and choice outputs must hold, and an unconstrained
// request in the same batch must equal the same request alone.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Ajv } from 'ajv';
import { LLM } from '../../src/index.js';
import { randomSchema, rng } from '../structured_output/schemas.js';
import { gpuSkipReason } from './helpers.js';

const skip = gpuSkipReason();

test('structured outputs on the device: 64 schemas valid, regex and choice match, a free request unchanged', { skip }, async () => {
  const llm = await LLM.create({ model: 'models/tiny-llama-kjv', device: 'cuda', useTqdm: false });
  try {
    const r = rng(21);
    const schemas = Array.from({ length: 64 }, () => randomSchema(r));
    const alone = await llm.generate(['In the beginning'], { temperature: 0, maxTokens: 32 });
    const outs = await llm.generate(['In the beginning', 'And God said', 'The LORD is', ...schemas.map((_, i) => `Request ${i}`)], [
      { temperature: 0, maxTokens: 32 },
      { temperature: 0.8, seed: 3, maxTokens: 30, structuredOutputs: { regex: '[0-9]{3}-[a-z]{2,6}' } },
      { temperature: 1, seed: 4, maxTokens: 10, structuredOutputs: { choice: ['light', 'darkness'] } },
      ...schemas.map((json, i) => ({ temperature: 1, seed: i, maxTokens: 256, structuredOutputs: { json, disableAnyWhitespace: true } })),
    ]);
    assert.deepEqual(outs[0]!.outputs[0]!.tokenIds, alone[0]!.outputs[0]!.tokenIds);
    assert.match(outs[1]!.outputs[0]!.text, /^[0-9]{3}-[a-z]{2,6}$/);
    assert.ok(['light', 'darkness'].includes(outs[2]!.outputs[0]!.text));
    const ajv = new Ajv({ strict: false });
    const bad = outs.slice(3).map((o, i) => [i, o.outputs[0]!.text] as const).filter(([i, t]) => {
      try {
        return !ajv.validate(schemas[i]!, JSON.parse(t));
      } catch {
        return true;
      }
    });
    assert.deepEqual(bad, []);
  } finally {
    llm.close();
  }
});
