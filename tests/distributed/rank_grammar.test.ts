// settleGrammarBitmask (src/executor/rank_grammar.ts): a rank other than 0 waits for
// the grammar thread's fill and keeps its own copy, so the next step's fill (which
// reuses the shared rows) cannot change what it samples with.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import type { SchedulerOutput } from '../../src/core/sched/output.js';
import { settleGrammarBitmask } from '../../src/executor/rank_grammar.js';
import { CTL_BYTES, CTL_DEAD, CTL_FILL_DONE, CTL_WORDS } from '../../src/structured_output/grammar_protocol.js';

function stepWithBitmask(seq: number): { so: SchedulerOutput; bitmask: Int32Array; ctl: Int32Array } {
  const bitmask = new Int32Array(new SharedArrayBuffer(2 * 3 * 4)); // [2 rows, 3 words]
  const ctl = new Int32Array(new SharedArrayBuffer(CTL_BYTES), 0, CTL_WORDS);
  const so = {
    scheduledNewReqs: [], scheduledCachedReqs: { reqIds: [], newBlockIds: [], numComputedTokens: [] }, numScheduledTokens: {},
    totalNumScheduledTokens: 0, finishedReqIds: [], preemptedReqIds: [], grammarBitmask: { reqIds: ['a', 'b'], bitmask, ctl, seq },
  } as unknown as SchedulerOutput;
  return { so, bitmask, ctl };
}

test('waits for the fill, then the copy is the rank\'s own: the next fill does not reach it', () => {
  const { so, bitmask, ctl } = stepWithBitmask(7);
  Atomics.store(ctl, CTL_FILL_DONE, 6); // fill 7 not written yet
  // The "grammar thread": writes fill 7's rows 100 ms from now, then bumps the counter.
  const filler = new Worker(`
    const { workerData: { bitmask, ctl } } = require('node:worker_threads');
    setTimeout(() => { bitmask.set([1, 2, 3, 4, 5, 6]); Atomics.store(ctl, ${CTL_FILL_DONE}, 7); Atomics.notify(ctl, ${CTL_FILL_DONE}); }, 100);
  `, { eval: true, workerData: { bitmask, ctl } });
  settleGrammarBitmask(so);
  const mine = so.grammarBitmask!;
  assert.deepEqual(Array.from(mine.bitmask), [1, 2, 3, 4, 5, 6], 'fill 7, not what was there before');
  assert.ok(!(mine.bitmask.buffer instanceof SharedArrayBuffer) && mine.ctl.buffer !== ctl.buffer, 'private copies');
  bitmask.fill(0); // fill 8 reuses the rows
  Atomics.store(ctl, CTL_FILL_DONE, 8);
  assert.deepEqual(Array.from(mine.bitmask), [1, 2, 3, 4, 5, 6]);
  assert.equal(mine.ctl[CTL_FILL_DONE], 7);
  return new Promise<void>((ok) => filler.once('exit', () => ok()));
});

test('a grammar thread that stopped leaves every token allowed, as on rank 0', () => {
  const { so, ctl } = stepWithBitmask(3);
  Atomics.store(ctl, CTL_FILL_DONE, 2);
  Atomics.store(ctl, CTL_DEAD, 1);
  assert.deepEqual(Array.from(settleGrammarBitmask(so).grammarBitmask!.bitmask), [-1, -1, -1, -1, -1, -1]);
});

test('a step without constrained requests passes through untouched', () => {
  const { so } = stepWithBitmask(1);
  so.grammarBitmask = null;
  assert.equal(settleGrammarBitmask(so).grammarBitmask, null);
});
