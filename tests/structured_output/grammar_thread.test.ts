// The grammar thread in the offline engine (tiny model): a compile held on the
// grammar thread (its test hook) holds back only its own request: an unconstrained
// request and an already compiled constrained one keep producing a token every step
// (steps counted, not time), the held one then produces schema-valid JSON; a grammar
// thread that throws ends only the constrained requests it held, and the next
// constrained request gets a new thread.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Ajv } from 'ajv';
import { RequestStatus } from '../../src/core/request.js';
import { LLM } from '../../src/index.js';
import type { RequestOutput } from '../../src/outputs.js';
import { SamplingParams, type SamplingParamsInput } from '../../src/sampling_params.js';

let llm: LLM;

before(async () => {
  llm = await LLM.create({ model: 'models/tiny-llama-kjv', useTqdm: false });
});

after(() => llm.close());

const SCHEMA = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 8 },
    count: { type: 'integer', minimum: 0, maximum: 99 },
    tags: { type: 'array', items: { enum: ['red', 'green', 'blue'] }, maxItems: 3 },
  },
  required: ['name', 'count', 'tags'],
  additionalProperties: false,
};

function harness() {
  const engine = llm.engine;
  const sched = engine.engineCore.scheduler;
  const manager = engine.engineCore.structuredOutputManager;
  const finished = new Map<string, RequestOutput>();
  const add = (id: string, prompt: string, p: SamplingParamsInput) => engine.addRequest(id, prompt, SamplingParams.create(p));
  const step = () => {
    for (const o of engine.step()) if (o.finished) finished.set(o.requestId, o);
  };
  const runToEnd = () => {
    for (let i = 0; i < 1000 && engine.hasUnfinishedRequests(); i++) step();
    assert.ok(!engine.hasUnfinishedRequests(), 'every request finished');
  };
  const numOutputs = (id: string) => sched.requests.get(id)?.numOutputTokens ?? -1;
  return { engine, sched, manager, finished, add, step, runToEnd, numOutputs };
}

test('a held compile holds back only its request: the others step and get their masks every step, then it gives valid JSON', async () => {
  const alone = await llm.generate(['In the beginning'], { temperature: 0, maxTokens: 24, ignoreEos: true });
  const h = harness();
  // Compiled before the hold, so that it runs (and needs a mask every step) while the other grammar waits.
  h.add('digits', 'And God said', { temperature: 0.8, seed: 1, maxTokens: 80, structuredOutputs: { regex: '[0-9]{60}' } });
  h.manager.waitForCompiles();
  h.manager.holdCompiles(true);
  h.add('free', 'In the beginning', { temperature: 0, maxTokens: 24, ignoreEos: true });
  h.add('json', 'Request: And God said', { temperature: 1, seed: 2, maxTokens: 200, structuredOutputs: { json: SCHEMA, disableAnyWhitespace: true } });
  h.step(); // admits 'digits' and 'free' (one token each); 'json' waits
  for (let k = 1; k <= 10; k++) {
    h.step();
    assert.equal(h.numOutputs('free'), 1 + k, `step ${k}: the unconstrained request produced a token`);
    assert.equal(h.numOutputs('digits'), 1 + k, `step ${k}: the compiled constrained request produced a token`);
    assert.equal(h.sched.requests.get('json')!.status, RequestStatus.WAITING_FOR_FSM);
    assert.equal(h.numOutputs('json'), 0);
  }
  assert.equal(h.manager.numPending, 1);
  h.manager.holdCompiles(false);
  h.runToEnd();
  assert.deepEqual(h.finished.get('free')!.outputs[0]!.tokenIds, alone[0]!.outputs[0]!.tokenIds, 'unconstrained output unchanged');
  const digits = h.finished.get('digits')!.outputs[0]!;
  assert.equal(digits.finishReason, 'stop');
  assert.match(digits.text, /^[0-9]{60}$/);
  const json = h.finished.get('json')!.outputs[0]!;
  assert.equal(json.finishReason, 'stop', json.text);
  const ajv = new Ajv({ strict: false });
  assert.ok(ajv.validate(SCHEMA, JSON.parse(json.text)), `${json.text}: ${ajv.errorsText()}`);
  assert.equal(h.engine.engineCore.numFreeBlocks, h.engine.engineCore.cacheConfig.numBlocks - 1);
});

test('an aborted request whose compile is queued leaves nothing behind', () => {
  const h = harness();
  h.manager.holdCompiles(true);
  h.add('queued', 'And God said', { maxTokens: 8, structuredOutputs: { regex: '[a-z]{5}x' } });
  h.step();
  assert.equal(h.manager.numPending, 1);
  h.engine.abortRequest('queued');
  assert.equal(h.manager.numPending, 0);
  h.manager.holdCompiles(false);
  h.runToEnd();
});

test('a grammar thread that throws ends only the constrained requests it held; the engine goes on with a new thread', () => {
  const h = harness();
  h.add('held', 'And God said', { temperature: 0.8, seed: 3, maxTokens: 80, structuredOutputs: { regex: '[0-9]{60}' } });
  h.manager.waitForCompiles();
  h.add('free', 'In the beginning', { temperature: 0, maxTokens: 30, ignoreEos: true });
  for (let k = 0; k < 3; k++) h.step();
  h.manager.crashThread();
  h.runToEnd();
  assert.equal(h.finished.get('held')!.outputs[0]!.finishReason, 'abort');
  const free = h.finished.get('free')!.outputs[0]!;
  assert.equal(free.finishReason, 'length');
  assert.equal(free.tokenIds.length, 30);
  h.add('again', 'The LORD is', { temperature: 1, seed: 4, maxTokens: 10, structuredOutputs: { choice: ['light', 'darkness'] } });
  h.runToEnd();
  const again = h.finished.get('again')!.outputs[0]!;
  assert.equal(again.finishReason, 'stop');
  assert.ok(['light', 'darkness'].includes(again.text), again.text);
});
