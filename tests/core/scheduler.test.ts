// The V1 scheduler driven by a fake runner: token budget, chunked prefill,
// maxNumSeqs, FCFS, preemption by recompute.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Request, RequestStatus } from '../../src/core/request.js';
import { SamplingParams, type SamplingParamsInit } from '../../src/sampling_params.js';
import type { Scheduler } from '../../src/core/sched/scheduler.js';
import {
  FakeRunner,
  assertPoolFree,
  blockHasher,
  makeScheduler,
  referenceGenerate,
  runToCompletion,
  seqPrompt,
  type RunResult,
  type TestSetup,
} from './fake_runner.js';

function mkReq(id: string, prompt: number[], sp: Partial<SamplingParamsInit> = {}): Request {
  return new Request({ requestId: id, promptTokenIds: prompt, samplingParams: new SamplingParams({ ignoreEos: true, ...sp }), blockHasher });
}

function setup(s: TestSetup): { sched: Scheduler; runner: FakeRunner } {
  const sched = makeScheduler(s);
  return { sched, runner: new FakeRunner(s.blockSize ?? 4, s.numBlocks ?? 1000) };
}

test('chunked prefill: a long prompt is split by the token budget and mixed with a decode', () => {
  const { sched, runner } = setup({ maxNumBatchedTokens: 32 });
  sched.addRequest(mkReq('A', seqPrompt(10, 100), { maxTokens: 12 }));
  const seen: Record<string, number>[] = [];
  const res = runToCompletion(sched, runner, {
    beforeStep: (step) => {
      if (step === 2) sched.addRequest(mkReq('B', seqPrompt(100, 500), { maxTokens: 3 }));
    },
    onStep: (_s, out) => seen.push({ ...out.numScheduledTokens }),
  });
  assert.deepEqual(seen[0], { A: 10 });
  assert.deepEqual(seen[1], { A: 1 });
  // The running decode goes first (1 token), B's prompt takes what is left: 31, 31, 31, then 7.
  assert.deepEqual(seen.slice(2, 7), [
    { A: 1, B: 31 },
    { A: 1, B: 31 },
    { A: 1, B: 31 },
    { A: 1, B: 7 },
    { A: 1, B: 1 },
  ]);
  for (const s of seen) assert.ok(Object.values(s).reduce((a, b) => a + b, 0) <= 32);
  for (const [id, p, n] of [['A', seqPrompt(10, 100), 12], ['B', seqPrompt(100, 500), 3]] as const) {
    const ref = referenceGenerate(id, p, { maxTokens: n, maxModelLen: 1024 });
    assert.deepEqual(res.get(id)!.tokenIds, ref.tokenIds);
    assert.equal(res.get(id)!.finishReason, 'length');
  }
  assertPoolFree(sched);
});

test('the token budget holds under a heavy mixed load, and outputs do not depend on it', () => {
  const prompts = Array.from({ length: 12 }, (_, i) => seqPrompt(5 + ((i * 37) % 60), 1000 * (i + 1)));
  const run = (budget: number) => {
    const { sched, runner } = setup({ maxNumBatchedTokens: budget });
    prompts.forEach((p, i) => sched.addRequest(mkReq(`r${i}`, p, { maxTokens: 6 + i })));
    let maxTotal = 0;
    const res = runToCompletion(sched, runner, { onStep: (_s, o) => (maxTotal = Math.max(maxTotal, o.totalNumScheduledTokens)) });
    assertPoolFree(sched);
    return { res, maxTotal };
  };
  const small = run(16);
  const big = run(2048);
  assert.equal(small.maxTotal, 16);
  prompts.forEach((p, i) => {
    const ref = referenceGenerate(`r${i}`, p, { maxTokens: 6 + i, maxModelLen: 1024 });
    assert.deepEqual(small.res.get(`r${i}`)!.tokenIds, ref.tokenIds);
    assert.deepEqual(big.res.get(`r${i}`)!.tokenIds, ref.tokenIds);
  });
});

test('longPrefillTokenThreshold caps one request per step; chunked prefill off keeps prompts whole', () => {
  {
    const { sched, runner } = setup({ maxNumBatchedTokens: 256, longPrefillTokenThreshold: 16 });
    sched.addRequest(mkReq('A', seqPrompt(40), { maxTokens: 2 }));
    const seen: number[] = [];
    runToCompletion(sched, runner, { onStep: (_s, o) => seen.push(o.numScheduledTokens.A) });
    // (The last step schedules nothing: it tells the runner that A finished.)
    assert.deepEqual(seen, [16, 16, 8, 1, undefined]);
  }
  {
    const { sched, runner } = setup({ maxNumBatchedTokens: 32, enableChunkedPrefill: false });
    sched.addRequest(mkReq('A', seqPrompt(8, 100), { maxTokens: 5 }));
    sched.addRequest(mkReq('B', seqPrompt(32, 200), { maxTokens: 2 }));
    const seen: Record<string, number>[] = [];
    runToCompletion(sched, runner, { onStep: (_s, o) => seen.push({ ...o.numScheduledTokens }) });
    seen.pop(); // the step that only reports B finished
    // B (32 tokens) never fits beside A's decode (31 left): it waits for A, then runs whole.
    assert.deepEqual(seen, [{ A: 8 }, { A: 1 }, { A: 1 }, { A: 1 }, { A: 1 }, { B: 32 }, { B: 1 }]);
    assertPoolFree(sched);
  }
});

test('maxNumSeqs bounds the running set; waiting requests start in arrival order', () => {
  const { sched, runner } = setup({ maxNumSeqs: 2 });
  for (let i = 0; i < 5; i++) sched.addRequest(mkReq(`r${i}`, seqPrompt(6, 100 * i), { maxTokens: 3 + (i % 2) }));
  const started: string[] = [];
  runToCompletion(sched, runner, {
    onStep: (_s, out) => {
      assert.ok(Object.keys(out.numScheduledTokens).length <= 2);
      started.push(...out.scheduledNewReqs.map((r) => r.reqId));
    },
  });
  assert.deepEqual(started, ['r0', 'r1', 'r2', 'r3', 'r4']);
  assertPoolFree(sched);
});

test('FCFS: a waiting request that does not fit blocks the ones behind it', () => {
  const { sched, runner } = setup({ numBlocks: 9 }); // 8 usable blocks of 4
  sched.addRequest(mkReq('A', seqPrompt(16, 100), { maxTokens: 4 }));
  const seen: string[][] = [];
  runToCompletion(sched, runner, {
    beforeStep: (step) => {
      if (step === 1) {
        sched.addRequest(mkReq('B', seqPrompt(16, 200), { maxTokens: 2 })); // 4 blocks: not while A holds 5
        sched.addRequest(mkReq('C', seqPrompt(2, 300), { maxTokens: 2 })); // 1 block: would fit
      }
    },
    onStep: (_s, out) => seen.push(Object.keys(out.numScheduledTokens).sort()),
  });
  assert.deepEqual(seen.slice(0, 4), [['A'], ['A'], ['A'], ['A']]);
  assert.deepEqual(seen[4], ['B', 'C']);
  assertPoolFree(sched);
});

test('preemption: the last running request is the victim, goes to the front of waiting, is recomputed; outputs unchanged', () => {
  const prompts = Array.from({ length: 5 }, (_, i) => seqPrompt(8 + i, 100 * (i + 1)));
  for (const enablePrefixCaching of [false, true]) {
    const { sched, runner } = setup({ numBlocks: 13, enablePrefixCaching }); // 12 usable: ~2 requests at full length
    prompts.forEach((p, i) => sched.addRequest(mkReq(`r${i}`, p, { maxTokens: 16, promptLogprobs: i === 1 ? 1 : null })));
    const results = new Map<string, RunResult>();
    let preemptSteps = 0;
    let resumed = 0;
    const res = runToCompletion(sched, runner, {
      results,
      onStep: (_s, out, runningBefore) => {
        const k = out.preemptedReqIds.length;
        if (k > 0) {
          preemptSteps++;
          // Victims are popped from the end of the running list, in that order...
          assert.deepEqual(out.preemptedReqIds, runningBefore.slice(-k).reverse());
          // ...and each is put at the front of the waiting queue.
          const waiting = [...sched.waiting].map((r) => r.requestId);
          assert.deepEqual(waiting.slice(0, k), out.preemptedReqIds.slice().reverse());
          for (const id of out.preemptedReqIds) {
            const r = sched.requests.get(id)!;
            assert.equal(r.status, RequestStatus.PREEMPTED);
            assert.equal(r.numComputedTokens, 0);
            assert.ok(r.numPreemptions > 0);
          }
          // A step that preempts admits nobody new.
          assert.equal(out.scheduledNewReqs.length, 0);
        }
        for (const nr of out.scheduledNewReqs) {
          const prev = results.get(nr.reqId)?.tokenIds ?? [];
          assert.deepEqual(nr.outputTokenIds, prev, 'a resumed request carries its outputs for the recompute');
          if (prev.length > 0) {
            resumed++;
            if (!enablePrefixCaching) assert.equal(nr.numComputedTokens, 0);
          }
        }
      },
    });
    assert.ok(preemptSteps > 0 && sched.totalNumPreemptions > 0, 'the workload must preempt');
    assert.ok(resumed > 0);
    prompts.forEach((p, i) => {
      const ref = referenceGenerate(`r${i}`, p, { maxTokens: 16, maxModelLen: 1024 });
      assert.deepEqual(res.get(`r${i}`)!.tokenIds, ref.tokenIds, `r${i}`);
    });
    // Prompt logprobs: positions 1..n-1, once, in order, despite chunks and recomputes.
    const pl = res.get('r1')!.outputs.flatMap((o) => o.newPromptLogprobs ?? []);
    assert.deepEqual(pl.map((x) => -x.logprobs[0]), Array.from({ length: 8 }, (_, i) => i + 1));
    assertPoolFree(sched);
  }
});
