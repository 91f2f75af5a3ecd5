// The scheduler's side of speculative decoding, step by step on hand-made runner
// outputs: 1 + K tokens scheduled with KV slots for the drafts, drafts trimmed by the
// token budget and max_model_len, rejected drafts rolled back off
// num_computed_tokens, prefix-cache hashes only over accepted tokens, drafts dropped
// on preemption, and vLLM's SpecDecodingStats.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Request } from '../../src/core/request.js';
import type { ModelRunnerOutput, SchedulerOutput } from '../../src/core/sched/output.js';
import type { Scheduler } from '../../src/core/sched/scheduler.js';
import { SamplingParams } from '../../src/sampling_params.js';
import { blockHasher, makeScheduler, seqPrompt, type TestSetup } from '../core/fake_runner.js';

function req(id: string, prompt: number[], maxTokens = 50): Request {
  return new Request({ requestId: id, promptTokenIds: prompt, samplingParams: new SamplingParams({ ignoreEos: true, maxTokens }), blockHasher });
}

/** K is the engine's (0 here: the stats are sized by the longest draft). */
const sched = (s: TestSetup = {}): Scheduler => makeScheduler(s);

/** The runner's answer for one step: per scheduled request, its tokens and its next drafts. */
function output(so: SchedulerOutput, sampled: Record<string, number[]>, drafts: Record<string, number[]> = {}): ModelRunnerOutput {
  const reqIds = [...so.scheduledCachedReqs.reqIds, ...so.scheduledNewReqs.map((r) => r.reqId)];
  return {
    reqIds,
    sampledTokenIds: reqIds.map((id) => sampled[id] ?? []),
    logprobs: reqIds.map(() => null),
    promptLogprobs: {},
    specTokenIds: reqIds.map((id) => drafts[id] ?? []),
  };
}

test('1 + K tokens with KV slots for the drafts; the rejected ones rolled back; the stats', () => {
  const s = sched({ blockSize: 4 });
  const a = req('A', seqPrompt(10, 1));
  s.addRequest(a);
  let so = s.schedule();
  assert.deepEqual(so.numScheduledTokens, { A: 10 });
  s.updateFromOutput(so, output(so, { A: [50] }, { A: [60, 61, 62] }));
  assert.deepEqual(a.specTokenIds, [60, 61, 62]);
  assert.equal(a.numComputedTokens, 10);

  so = s.schedule();
  assert.deepEqual(so.numScheduledTokens, { A: 4 }, 'the last token and 3 drafts');
  assert.deepEqual(so.scheduledSpecDecodeTokens, { A: [60, 61, 62] });
  assert.equal(so.scheduledCachedReqs.numComputedTokens[0], 10);
  assert.equal(s.kvCacheManager.getBlockIds('A').length, 4, 'slots for 14 tokens: 4 blocks of 4');
  assert.equal(a.numComputedTokens, 14, 'counted as computed once scheduled');
  // One draft accepted, then the recovered token 99.
  const res = s.updateFromOutput(so, output(so, { A: [60, 99] }, { A: [70, 71, 72] }));
  assert.deepEqual(res.outputs[0].newTokenIds, [60, 99]);
  assert.equal(a.numComputedTokens, 12, 'the 2 rejected drafts come off: numTokens - 1');
  assert.equal(a.numTokens, 13);
  assert.deepEqual(res.schedulerStats!.specDecodingStats, { numSpecTokens: 3, numDrafts: 1, numDraftTokens: 3, numAcceptedTokens: 1, numAcceptedTokensPerPos: [1, 0, 0] });

  // Every draft accepted: the bonus token follows.
  so = s.schedule();
  assert.deepEqual(so.scheduledSpecDecodeTokens, { A: [70, 71, 72] });
  s.updateFromOutput(so, output(so, { A: [70, 71, 72, 80] }));
  assert.equal(a.numComputedTokens, 16);
  assert.equal(a.numTokens, 17);
  assert.deepEqual(a.outputTokenIds, [50, 60, 99, 70, 71, 72, 80]);
  assert.deepEqual(a.specTokenIds, [], 'no new drafts');
  so = s.schedule();
  assert.deepEqual(so.numScheduledTokens, { A: 1 });
  assert.deepEqual(so.scheduledSpecDecodeTokens, {});
});

test('drafts are trimmed to the token budget and to max_model_len', () => {
  const s = sched({ blockSize: 4, maxNumBatchedTokens: 12, maxModelLen: 16 });
  const a = req('A', seqPrompt(10, 1));
  const b = req('B', seqPrompt(8, 100));
  s.addRequest(a);
  let so = s.schedule();
  s.updateFromOutput(so, output(so, { A: [50] }, { A: [60, 61, 62, 63] }));
  s.addRequest(b);
  so = s.schedule();
  // A first (running): 1 + 4; B's prompt takes the remaining 7 of 12.
  assert.deepEqual(so.numScheduledTokens, { A: 5, B: 7 });
  s.updateFromOutput(so, output(so, { A: [60, 61, 62, 63, 64] }, { A: [1, 2, 3, 4] }));
  assert.equal(a.numTokens, 16, '10 prompt tokens and 6 outputs');
  // numTokens 16 = maxModelLen: A is finished by length.
  assert.equal(a.isFinished, true);
  so = s.schedule();
  assert.deepEqual(so.numScheduledTokens, { B: 1 });

  // The budget: C needs 1 + 3, gets 2 (the last token and 1 draft).
  const s2 = sched({ blockSize: 4, maxNumBatchedTokens: 2 });
  const c = req('C', seqPrompt(2, 1));
  s2.addRequest(c);
  so = s2.schedule();
  s2.updateFromOutput(so, output(so, { C: [5] }, { C: [6, 7, 8] }));
  so = s2.schedule();
  assert.deepEqual(so.numScheduledTokens, { C: 2 });
  assert.deepEqual(so.scheduledSpecDecodeTokens, { C: [6] });
  assert.deepEqual(c.specTokenIds, [6]);
  s2.updateFromOutput(so, output(so, { C: [9] }));
  assert.equal(c.numComputedTokens, 3, 'rejected: back to numTokens - 1');

  // max_model_len 8: a request at 5 tokens may compute positions up to 6 (1 + 1 draft).
  const s3 = sched({ blockSize: 4, maxModelLen: 8 });
  const d = req('D', seqPrompt(4, 1));
  s3.addRequest(d);
  so = s3.schedule();
  s3.updateFromOutput(so, output(so, { D: [5] }, { D: [6, 7, 8] }));
  so = s3.schedule();
  assert.deepEqual(so.numScheduledTokens, { D: 3 }, 'maxModelLen - 1 - numComputedTokens = 3');
  assert.deepEqual(so.scheduledSpecDecodeTokens, { D: [6, 7] });
});

test('prefix-cache hashes cover accepted tokens only; a preempted request drops its drafts', () => {
  const s = sched({ blockSize: 4 });
  const a = req('A', seqPrompt(6, 1));
  s.addRequest(a);
  let so = s.schedule();
  s.updateFromOutput(so, output(so, { A: [50] }, { A: [60, 61, 62] }));
  so = s.schedule(); // computes positions 6..9 (token 50 and drafts 60, 61, 62)
  // While verifying, only the block of real tokens [1..4] is registered (tokens 5, 6, 50, 60 are not all known yet).
  const hit = (prompt: number[]) => s.kvCacheManager.getComputedBlocks(req(`q${prompt.join('-')}`, prompt)).numComputedTokens;
  assert.equal(hit([1, 2, 3, 4, 5, 6, 50, 60, 0]), 4);
  s.updateFromOutput(so, output(so, { A: [60, 98] }));
  so = s.schedule(); // the next allocation registers block [5, 6, 50, 60]: 60 was accepted
  assert.equal(hit([1, 2, 3, 4, 5, 6, 50, 60, 0]), 8);
  assert.equal(hit([1, 2, 3, 4, 5, 6, 50, 61, 0]), 4, 'a rejected draft never reaches a hash');

});

test('a request preempted with drafts drops them and is recomputed from scratch', () => {
  // 5 usable blocks of 4: B (8 tokens) and A (6) take 4; B's next token takes the last one, A's drafts find none.
  const s = sched({ blockSize: 4, numBlocks: 6 });
  const b = req('B', seqPrompt(8, 100));
  const a = req('A', seqPrompt(6, 1));
  s.addRequest(b);
  s.addRequest(a);
  let so = s.schedule();
  assert.deepEqual(so.numScheduledTokens, { B: 8, A: 6 });
  s.updateFromOutput(so, output(so, { B: [50], A: [51] }, { A: [60, 61, 62] }));
  so = s.schedule();
  assert.deepEqual(so.preemptedReqIds, ['A']);
  assert.deepEqual(so.numScheduledTokens, { B: 1 });
  assert.deepEqual(so.scheduledSpecDecodeTokens, {});
  assert.deepEqual(a.specTokenIds, []);
  assert.equal(a.numComputedTokens, 0);
});
