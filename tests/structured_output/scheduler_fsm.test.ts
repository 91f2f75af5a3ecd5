// The scheduler with structured outputs, driven by the fake runner: a request
// whose grammar is compiling waits in WAITING_FOR_FSM without holding up the
// others; the step's bitmask has one row per constrained request that samples;
// a sampler that obeys the mask ends with the grammar's text.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { Request, RequestStatus } from '../../src/core/request.js';
import { Scheduler } from '../../src/core/sched/scheduler.js';
import type { SchedulerOutput } from '../../src/core/sched/output.js';
import { SamplingParams } from '../../src/sampling_params.js';
import { awaitGrammarBitmask } from '../../src/structured_output/grammar_bitmask.js';
import { StructuredOutputManager } from '../../src/structured_output/manager.js';
import { initXgrammar } from '../../src/structured_output/xgrammar_loader.js';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { blockHasher, FakeRunner, hashSample } from '../core/fake_runner.js';

const MODEL = 'models/tiny-llama-kjv';
const V = 4096;
const EOS = 0; // <|endoftext|>

before(async () => {
  await initXgrammar();
});

function setup(numBlocks = 200) {
  const manager = new StructuredOutputManager({ tokenizerDir: MODEL, vocabSize: V });
  const sched = new Scheduler(
    { maxNumSeqs: 8, maxNumBatchedTokens: 64, maxModelLen: 512, enableChunkedPrefill: true, maxWaitingRequests: Infinity },
    { blockSize: 4, numBlocks, enablePrefixCaching: true },
    { structuredOutputManager: manager },
  );
  // Constrained rows take the allowed token nearest above the hash; others the hash.
  let step: SchedulerOutput | null = null;
  const runner = new FakeRunner(4, numBlocks, (reqId, tokens) => {
    const gb = step?.grammarBitmask;
    const row = gb ? gb.reqIds.indexOf(reqId) : -1;
    const h = hashSample(reqId, tokens);
    if (row < 0) return h;
    const bitmask = awaitGrammarBitmask(gb!);
    const W = bitmask.length / gb!.reqIds.length;
    for (let k = 0; k < V; k++) {
      const t = (h + k) % V;
      if ((bitmask[row * W + (t >> 5)] >>> (t & 31)) & 1) return t;
    }
    throw new Error('empty mask');
  });
  const run = () => {
    step = sched.schedule();
    return { so: step, out: sched.updateFromOutput(step, runner.execute(step)) };
  };
  return { manager, sched, run };
}

const req = (id: string, prompt: number[], sp: Partial<SamplingParams>) =>
  new Request({ requestId: id, promptTokenIds: prompt, samplingParams: SamplingParams.create({ maxTokens: 12, ...sp }), eosTokenIds: [EOS], blockHasher });

test('WAITING_FOR_FSM holds back only its request; the bitmask covers the constrained rows that sample', () => {
  const { manager, sched, run } = setup();
  sched.addRequest(req('free', [10, 11, 12], { ignoreEos: true }));
  sched.addRequest(req('json', [20, 21], { structuredOutputs: { choice: ['In the beginning', 'And God said'] } }));
  assert.equal(sched.requests.get('json')!.status, RequestStatus.WAITING_FOR_FSM);
  const first = run();
  assert.deepEqual(Object.keys(first.so.numScheduledTokens), ['free'], 'the compiling request is skipped');
  assert.equal(first.so.grammarBitmask, null);
  assert.equal(sched.requests.get('json')!.status, RequestStatus.WAITING_FOR_FSM);
  manager.waitForCompiles();
  assert.equal(manager.numCompiles, 1);
  const second = run();
  assert.deepEqual(Object.keys(second.so.numScheduledTokens).sort(), ['free', 'json']);
  assert.deepEqual(second.so.grammarBitmask!.reqIds, ['json']);
  assert.equal(second.so.grammarBitmask!.bitmask.length, Math.ceil(V / 32));
  let text: number[] = second.out.outputs.filter((o) => o.requestId === 'json').flatMap((o) => o.newTokenIds);
  for (let i = 0; i < 40 && sched.requests.has('json'); i++) {
    const { out } = run();
    for (const o of out.outputs) if (o.requestId === 'json') text = text.concat(o.newTokenIds);
  }
  assert.ok(!sched.requests.has('json'), 'the constrained request finished');
  const tok = Tokenizer.fromPretrained(MODEL);
  assert.ok(['In the beginning', 'And God said'].includes(tok.decode(text, { skipSpecialTokens: true })), tok.decode(text));
});

test('a second request with the same grammar needs no compile (cache); a grammar that fails is finished as aborted', () => {
  const { manager, sched, run } = setup();
  sched.addRequest(req('a', [5, 6], { structuredOutputs: { regex: '[0-9]{2}' } }));
  manager.waitForCompiles();
  sched.addRequest(req('b', [7, 8], { structuredOutputs: { regex: '[0-9]{2}' } }));
  assert.equal(manager.numPending, 0);
  assert.equal(manager.numCompiles, 1);
  // Not validated by a front end here: the compile fails on the grammar thread.
  sched.addRequest(req('bad', [9], { structuredOutputs: { grammar: 'root ::= (' } }));
  manager.waitForCompiles();
  const { out } = run();
  const bad = out.outputs.find((o) => o.requestId === 'bad');
  assert.equal(bad?.finishReason, 'abort');
  assert.ok(!sched.requests.has('bad'));
});

test('with a reasoning parser the grammar starts after the end-of-reasoning token, or at once when the prompt closed the block', async () => {
  await initXgrammar();
  // Stand-ins for <think> / </think> in the tiny vocabulary: ids 1 and 2.
  const manager = new StructuredOutputManager({ tokenizerDir: MODEL, vocabSize: V, reasoningStartTokenIds: [1], reasoningEndTokenIds: [2] });
  const mk = (id: string, prompt: number[]) => ({ requestId: id, promptTokenIds: prompt, eosTokenIds: [EOS], outputTokenIds: [] as number[], structuredOutputRequest: null });
  const thinking = mk('thinking', [10, 1, 11]);
  const closed = mk('closed', [10, 1, 11, 2, 12]);
  manager.grammarInit(thinking, { choice: ['yes', 'no'] });
  manager.grammarInit(closed, { choice: ['yes', 'no'] });
  manager.waitForCompiles();
  assert.equal(manager.shouldMask(thinking), false, 'free text while thinking');
  assert.equal(manager.shouldMask(closed), true, 'the prompt ended the reasoning');
  manager.acceptTokens(thinking, [300, 301]);
  assert.equal(manager.shouldMask(thinking), false, 'thinking tokens are not checked');
  const tok = Tokenizer.fromPretrained(MODEL);
  const yes = tok.encode('yes', { addSpecialTokens: false });
  manager.acceptTokens(thinking, [302, 2, ...yes]);
  assert.equal(manager.shouldMask(thinking), true, 'after the end token the grammar takes the rest');
  // The matcher took "yes" (not the thinking tokens): the mask now allows EOS and nothing else.
  const bitmask = awaitGrammarBitmask(manager.grammarBitmask([thinking])!);
  const allowed = [...Array(V).keys()].filter((t) => (bitmask[t >> 5]! >>> (t & 31)) & 1);
  assert.deepEqual(allowed, [EOS]);
  manager.acceptTokens(thinking, [EOS]);
  assert.equal(manager.shouldMask(thinking), false, 'terminated');
  manager.shutdown();
});

test('preempted constrained requests recompute with their matcher in step: both outputs match the grammar', () => {
  // 19 usable blocks of 4: two 34-token prompts fit, their outputs do not, so the later one is preempted and recomputed.
  const { manager, sched, run } = setup(20);
  const prompt = (base: number) => Array.from({ length: 34 }, (_, i) => base + i);
  for (const id of ['a', 'b']) sched.addRequest(req(id, prompt(id === 'a' ? 40 : 90), { maxTokens: 40, structuredOutputs: { regex: '[a-z]{12}' } }));
  manager.waitForCompiles();
  const text = new Map<string, number[]>([['a', []], ['b', []]]);
  const reasons = new Map<string, string | null>();
  for (let i = 0; i < 200 && sched.hasRequests(); i++) {
    for (const o of run().out.outputs) {
      text.get(o.requestId)!.push(...o.newTokenIds);
      if (o.finishReason !== null) reasons.set(o.requestId, o.finishReason);
    }
  }
  assert.ok(sched.totalNumPreemptions > 0, 'a request was preempted');
  const tok = Tokenizer.fromPretrained(MODEL);
  for (const id of ['a', 'b']) {
    assert.equal(reasons.get(id), 'stop');
    assert.match(tok.decode(text.get(id)!, { skipSpecialTokens: true }), /^[a-z]{12}$/);
  }
  manager.shutdown();
});

test('rollBack on the grammar thread undoes accepted tokens: the mask is the one before them', () => {
  const manager = new StructuredOutputManager({ tokenizerDir: MODEL, vocabSize: V });
  const r = { requestId: 'r', promptTokenIds: [5], eosTokenIds: [EOS], outputTokenIds: [] as number[], structuredOutputRequest: null };
  manager.grammarInit(r, { choice: ['In the beginning', 'And God said'] });
  manager.waitForCompiles();
  const mask = () => awaitGrammarBitmask(manager.grammarBitmask([r])!).slice();
  const before = mask();
  const tok = Tokenizer.fromPretrained(MODEL);
  const ids = tok.encode('In the', { addSpecialTokens: false });
  manager.acceptTokens(r, ids);
  const after = mask();
  assert.notDeepEqual(after, before, 'the accepted tokens moved the matcher');
  manager.rollBack(r, ids.length);
  assert.deepEqual(mask(), before);
  assert.throws(() => manager.rollBack(r, 1), RangeError);
  manager.shutdown();
});
