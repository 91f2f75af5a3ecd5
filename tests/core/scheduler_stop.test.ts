// Stop conditions, abort, refused requests, logprobs pass-through and stats.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Request, RequestStatus } from '../../src/core/request.js';
import { SamplingParams, type SamplingParamsInit } from '../../src/sampling_params.js';
import type { SchedulerOutput } from '../../src/core/sched/output.js';
import { FakeRunner, assertPoolFree, blockHasher, makeScheduler, referenceGenerate, runToCompletion, seqPrompt } from './fake_runner.js';

const EOS = 2;

function mkReq(id: string, prompt: number[], sp: Partial<SamplingParamsInit> = {}, eos: number[] = [EOS]): Request {
  return new Request({ requestId: id, promptTokenIds: prompt, samplingParams: new SamplingParams(sp), eosTokenIds: eos, blockHasher });
}

/** Each request emits its script, then 9s. */
function scripted(scripts: Record<string, number[]>) {
  return (reqId: string, tokens: readonly number[]): number => {
    const script = scripts[reqId];
    const k = tokens.length - PROMPT_LEN;
    return k < script.length ? script[k] : 9;
  };
}
const PROMPT_LEN = 6;

test('stop conditions in vLLM order: EOS, ignoreEos, stop token ids, minTokens, maxTokens', () => {
  const S = [5, 6, EOS, 7, 8, 3, EOS];
  const cases: [string, Partial<SamplingParamsInit>, number[], string, number | null][] = [
    ['eos', { maxTokens: 10 }, [5, 6, EOS], 'stop', null],
    ['ignore_eos', { maxTokens: 5, ignoreEos: true }, [5, 6, EOS, 7, 8], 'length', null],
    ['stop_id', { maxTokens: 10, stopTokenIds: [6] }, [5, 6], 'stop', 6],
    ['stop_id_after_eos', { maxTokens: 10, stopTokenIds: [7] }, [5, 6, EOS], 'stop', null],
    ['min_tokens', { maxTokens: 10, minTokens: 4, stopTokenIds: [6] }, [5, 6, EOS, 7, 8, 3, EOS], 'stop', null],
    ['min_tokens_stop_id', { maxTokens: 10, minTokens: 4, stopTokenIds: [3] }, [5, 6, EOS, 7, 8, 3], 'stop', 3],
    ['max_tokens', { maxTokens: 2 }, [5, 6], 'length', null],
    ['eos_at_max', { maxTokens: 3 }, [5, 6, EOS], 'stop', null],
  ];
  const scripts: Record<string, number[]> = {};
  for (const [id] of cases) scripts[id] = S;
  const sched = makeScheduler();
  const runner = new FakeRunner(4, 1000, scripted(scripts));
  for (const [id, sp] of cases) sched.addRequest(mkReq(id, seqPrompt(PROMPT_LEN), sp));
  const res = runToCompletion(sched, runner);
  for (const [id, sp, tokens, reason, stopReason] of cases) {
    const r = res.get(id)!;
    assert.deepEqual(r.tokenIds, tokens, id);
    assert.equal(r.finishReason, reason, id);
    assert.equal(r.stopReason, stopReason, id);
    // The plain reference agrees.
    const ref = referenceGenerate(id, seqPrompt(PROMPT_LEN), {
      maxTokens: sp.maxTokens ?? 16,
      minTokens: sp.minTokens,
      eos: [EOS],
      ignoreEos: sp.ignoreEos,
      stopTokenIds: sp.stopTokenIds,
      maxModelLen: 1024,
    }, scripted(scripts));
    assert.deepEqual(ref.tokenIds, tokens, `${id} (reference)`);
  }
  assertPoolFree(sched);
});

test('any of several EOS ids stops; maxModelLen caps requests without maxTokens', () => {
  const sched = makeScheduler({ maxModelLen: 15 });
  const runner = new FakeRunner(4, 1000, scripted({ a: [5, 77, 1], b: [5, 6, 7, 8] }));
  sched.addRequest(mkReq('a', seqPrompt(PROMPT_LEN), { maxTokens: 10 }, [2, 77]));
  sched.addRequest(mkReq('b', seqPrompt(PROMPT_LEN), { maxTokens: null }));
  const res = runToCompletion(sched, runner);
  assert.deepEqual(res.get('a')!.tokenIds, [5, 77]);
  assert.equal(res.get('a')!.finishReason, 'stop');
  // 6 prompt + 9 outputs = maxModelLen 15.
  assert.deepEqual(res.get('b')!.tokenIds, [5, 6, 7, 8, 9, 9, 9, 9, 9]);
  assert.equal(res.get('b')!.finishReason, 'length');
  assertPoolFree(sched);
});

test('prompts that can never run are refused: reported finished (length), never scheduled', () => {
  const sched = makeScheduler({ maxModelLen: 16, numBlocks: 4 }); // 3 usable blocks = 12 tokens
  const runner = new FakeRunner(4, 4);
  sched.addRequest(mkReq('too_long', seqPrompt(16), { maxTokens: 2 }));
  sched.addRequest(mkReq('empty', [], { maxTokens: 2 }));
  sched.addRequest(mkReq('too_big_for_cache', seqPrompt(12), { maxTokens: 2 }));
  sched.addRequest(mkReq('ok', seqPrompt(11), { maxTokens: 1 }));
  assert.throws(() => sched.addRequest(mkReq('ok', seqPrompt(3))), /already in the engine/);
  const scheduled = new Set<string>();
  const res = runToCompletion(sched, runner, { onStep: (_s, o) => Object.keys(o.numScheduledTokens).forEach((k) => scheduled.add(k)) });
  for (const id of ['too_long', 'empty', 'too_big_for_cache']) {
    assert.deepEqual(res.get(id)!.tokenIds, []);
    assert.equal(res.get(id)!.finishReason, 'length');
    assert.ok(!scheduled.has(id));
  }
  assert.equal(res.get('ok')!.tokenIds.length, 1);
  assertPoolFree(sched);
});

test('abort: running, waiting and preempted requests; the runner is told; the pool ends free', () => {
  const sched = makeScheduler({ numBlocks: 11, maxNumBatchedTokens: 16 });
  const runner = new FakeRunner(4, 11);
  for (let i = 0; i < 6; i++) sched.addRequest(mkReq(`r${i}`, seqPrompt(10 + i, 100 * (i + 1)), { maxTokens: 20, ignoreEos: true }));
  const aborted = new Map<string, number>();
  const outs: SchedulerOutput[] = [];
  let abortedPreempted = false;
  const res = runToCompletion(sched, runner, {
    beforeStep: (step) => {
      const byStatus = (s: RequestStatus) => [...sched.requests.values()].filter((r) => r.status === s && !aborted.has(r.requestId));
      const pick = [
        step === 3 ? byStatus(RequestStatus.RUNNING)[0] : undefined,
        step === 3 ? byStatus(RequestStatus.WAITING)[0] : undefined,
        !abortedPreempted ? byStatus(RequestStatus.PREEMPTED)[0] : undefined,
      ].filter((r) => r !== undefined);
      for (const r of pick) {
        if (r.status === RequestStatus.PREEMPTED) abortedPreempted = true;
        assert.deepEqual(sched.finishRequests(r.requestId, RequestStatus.FINISHED_ABORTED), [r.requestId]);
        assert.equal(r.status, RequestStatus.FINISHED_ABORTED);
        assert.equal(r.getFinishedReason(), 'abort');
        aborted.set(r.requestId, step);
      }
    },
    onStep: (_s, o) => outs.push(o),
  });
  assert.ok(aborted.size >= 3 && abortedPreempted, `aborted ${[...aborted.keys()]}`);
  for (const [id, step] of aborted) {
    assert.ok(outs[step].finishedReqIds.includes(id), `${id} reported to the runner at the next schedule`);
    for (const o of outs.slice(step)) assert.equal(o.numScheduledTokens[id], undefined);
    assert.notEqual(res.get(id)?.finishReason, 'length');
    assert.ok(!sched.running.some((r) => r.requestId === id) && ![...sched.waiting].some((r) => r.requestId === id));
  }
  assert.deepEqual(sched.finishRequests(['nope', [...aborted.keys()][0]], RequestStatus.FINISHED_ABORTED), []);
  assert.throws(() => sched.finishRequests('x', RequestStatus.RUNNING), /FINISHED_\* status/);
  assert.equal(sched.getNumUnfinishedRequests(), 0);
  assert.equal(sched.hasUnfinishedRequests(), false);
  assertPoolFree(sched);
});

test('outputs: logprobs passed through; numCachedTokens; stats per step add up', () => {
  const sched = makeScheduler({ numBlocks: 14, maxNumBatchedTokens: 24 });
  const runner = new FakeRunner(4, 14);
  const shared = seqPrompt(16, 7000);
  for (let i = 0; i < 6; i++) {
    sched.addRequest(mkReq(`r${i}`, [...shared, ...seqPrompt(3, 100 * i)], { maxTokens: 12, ignoreEos: true, logprobs: i % 2 === 0 ? 2 : null }));
  }
  let hits = 0;
  let queries = 0;
  let preemptions = 0;
  const origUpdate = sched.updateFromOutput.bind(sched);
  sched.updateFromOutput = (so, mro) => {
    const eco = origUpdate(so, mro);
    const st = eco.schedulerStats!;
    assert.ok(st.kvCacheUsage >= 0 && st.kvCacheUsage <= 1);
    assert.equal(st.numRunningReqs, sched.running.length);
    assert.equal(st.numWaitingReqs, sched.waiting.length);
    hits += st.prefixCacheHits;
    queries += st.prefixCacheQueries;
    preemptions += st.numPreemptions;
    return eco;
  };
  const res = runToCompletion(sched, runner);
  const total = sched.kvCacheManager.totalPrefixCacheStats;
  assert.equal(hits, total.hits);
  assert.equal(queries, total.queries);
  assert.equal(preemptions, sched.totalNumPreemptions);
  assert.ok(total.hits > 0);
  for (let i = 0; i < 6; i++) {
    const r = res.get(`r${i}`)!;
    assert.equal(r.tokenIds.length, 12);
    for (const o of r.outputs) {
      if (i % 2 === 0) assert.equal(o.newLogprobs!.length, o.newTokenIds.length);
      else assert.equal(o.newLogprobs, null);
      assert.equal(o.numCachedTokens, r.outputs[0].numCachedTokens);
    }
  }
  assert.equal(res.get('r0')!.numCachedTokens, 0);
  // r1 arrives while r0's prompt is being computed in the same step: it hits the 4 shared blocks.
  assert.equal(res.get('r1')!.numCachedTokens, 16);
  assertPoolFree(sched);
});
