// The engine view's recorder over the real scheduler and KV cache manager (the fake
// runner checks the KV writes): what each record says about the batch (prefill
// chunks, decodes, preemptions, the waiting queue) and the KV grid (decoded here and
// compared block by block with the pool), the sampling of steps, and the cell cap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Request } from '../../src/core/request.js';
import { SamplingParams } from '../../src/sampling_params.js';
import type { Scheduler } from '../../src/core/sched/scheduler.js';
import type { SchedulerOutput } from '../../src/core/sched/output.js';
import { EngineViewRecorder, type EngineViewRecorderOptions } from '../../src/core/sched/engine_view_recorder.js';
import { type EngineViewRecord, type KvGridRecord, KvBlockState } from '../../src/core/engine_view.js';
import { FakeRunner, blockHasher, makeScheduler, seqPrompt, type TestSetup } from './fake_runner.js';

const mkReq = (id: string, prompt: number[], maxTokens = 4) =>
  new Request({ requestId: id, promptTokenIds: prompt, samplingParams: new SamplingParams({ ignoreEos: true, maxTokens }), blockHasher });

/** One fake runner per scheduler: its KV cache outlives a run (prefix hits read it). */
const runners = new WeakMap<Scheduler, FakeRunner>();

/** Steps the scheduler as the EngineCore does, with the recorder's two hooks; returns every record, in order. */
function run(sched: Scheduler, rec: EngineViewRecorder, opts: { beforeStep?: (step: number) => void; afterSchedule?: (so: SchedulerOutput) => void } = {}): EngineViewRecord[] {
  let runner = runners.get(sched);
  if (runner === undefined) runners.set(sched, (runner = new FakeRunner(sched.blockSize, sched.kvCacheManager.blockPool.numBlocks)));
  const records: EngineViewRecord[] = [];
  for (let step = 0; step < 10_000; step++) {
    opts.beforeStep?.(step);
    if (!sched.hasRequests()) break;
    const so = sched.schedule();
    rec.onSchedule(so);
    opts.afterSchedule?.(so);
    const outputs = sched.updateFromOutput(so, runner.execute(so));
    rec.onOutputs(outputs);
    const r = outputs.schedulerStats?.engineView;
    if (r) records.push(r);
  }
  return records;
}

/** The grid back to one state and one holder per cell. */
function decodeGrid(kv: KvGridRecord): { states: number[]; owners: (string | null)[] } {
  const states: number[] = [];
  const owners: (string | null)[] = [];
  for (let i = 0; i < kv.runs.length; i += 3) {
    for (let k = 0; k < kv.runs[i + 2]; k++) {
      states.push(kv.runs[i]);
      owners.push(kv.runs[i + 1] === -1 ? null : kv.owners[kv.runs[i + 1]]);
    }
  }
  return { states, owners };
}

/** Each block's state straight from the pool and the requests' block tables (a block-per-cell grid). */
function expectedStates(sched: Scheduler): { states: number[]; owners: (string | null)[] } {
  const kvm = sched.kvCacheManager;
  const pool = kvm.blockPool;
  const owner = new Map<number, string>();
  const hit = new Set<number>();
  for (const r of sched.running) {
    kvm.getBlocks(r.requestId).forEach((b, j) => {
      if (!owner.has(b.blockId)) owner.set(b.blockId, r.requestId);
      if (owner.get(b.blockId) === r.requestId && j < Math.floor(Math.max(0, r.numCachedTokens) / kvm.blockSize)) hit.add(b.blockId);
    });
  }
  const states: number[] = [];
  const owners: (string | null)[] = [];
  for (const b of pool.blocks.slice(1)) {
    if (b.refCnt > 1) states.push(KvBlockState.SHARED);
    else if (b.refCnt === 1) states.push(hit.has(b.blockId) ? KvBlockState.PREFIX_HIT : KvBlockState.USED);
    else states.push(b.blockHash !== null ? KvBlockState.CACHED : KvBlockState.FREE);
    owners.push(owner.get(b.blockId) ?? null);
  }
  return { states, owners };
}

const everyStep = (sched: Scheduler, o: EngineViewRecorderOptions = {}) => new EngineViewRecorder(sched, { maxRecordsPerSecond: Infinity, ...o });
const setup = (s: TestSetup = {}) => makeScheduler({ blockSize: 4, numBlocks: 64, maxNumBatchedTokens: 64, ...s });

test('two requests with one prefix, admitted in one step: both in the record, the prefix blocks shared', () => {
  const sched = setup();
  const rec = everyStep(sched);
  const system = seqPrompt(32, 5000); // 8 full blocks of 4
  sched.addRequest(mkReq('a', [...system, ...seqPrompt(6, 100)]));
  sched.addRequest(mkReq('b', [...system, ...seqPrompt(6, 200)]));
  // The pool as each step's schedule() left it (the record is taken then).
  const want: ReturnType<typeof expectedStates>[] = [];
  const records = run(sched, rec, { afterSchedule: (so) => so.totalNumScheduledTokens > 0 && want.push(expectedStates(sched)) });

  const first = records[0];
  assert.equal(first.step, 1);
  assert.deepEqual(first.running.map((r) => [r.reqId, r.phase, r.isNew, r.numComputedTokens, r.numScheduledTokens]), [
    ['a', 'prefill', true, 0, 38],
    ['b', 'prefill', true, 32, 6], // the prefix cache hit: 8 blocks found, not computed
  ]);
  assert.equal(first.running[1].numCachedTokens, 32);
  assert.equal(first.numScheduledTokens, 44);
  assert.deepEqual(first.admitted, { ids: ['a', 'b'], count: 2 });
  assert.equal(first.prefixCacheHits, 32);
  assert.equal(first.prefixCacheQueries, 76);
  assert.equal(first.kv.counts[KvBlockState.SHARED], 8);
  // a: 38 tokens -> 10 blocks (8 shared); b: 8 shared + 2 of its own.
  assert.equal(first.kv.counts[KvBlockState.USED], 4);
  assert.equal(first.kv.counts[KvBlockState.FREE], 63 - 12);

  const second = records[1];
  assert.deepEqual(second.running.map((r) => [r.reqId, r.phase, r.isNew, r.numScheduledTokens]), [
    ['a', 'decode', false, 1],
    ['b', 'decode', false, 1],
  ]);
  assert.deepEqual(records.at(-1)!.finished.ids.sort(), ['a', 'b']);
  // Every record's grid is the pool as it was, block by block.
  assert.equal(records.length, want.length, 'a record every step');
  assert.ok(records.length >= 4);
  records.forEach((r, i) => assert.deepEqual(decodeGrid(r.kv), want[i], `step ${r.step}`));
});

test('a later request with the same prefix hits the cached blocks of finished ones', () => {
  const sched = setup();
  const rec = everyStep(sched);
  const system = seqPrompt(16, 7000);
  sched.addRequest(mkReq('first', [...system, 1, 2, 3]));
  run(sched, rec);
  const idle = sched.makeStats();
  rec.onIdle(idle);
  const last = idle.engineView!;
  assert.equal(last.running.length, 0);
  // Freed, but still in the prefix cache: 4 full prompt blocks and the first full output block.
  assert.ok(last.kv.counts[KvBlockState.CACHED] >= 4);
  assert.equal(last.kv.counts[KvBlockState.USED], 0);

  sched.addRequest(mkReq('again', [...system, 9, 9]));
  const after = run(sched, rec);
  const admitted = after[0].running.find((r) => r.reqId === 'again')!;
  assert.equal(admitted.numCachedTokens, 16);
  assert.equal(after[0].kv.counts[KvBlockState.PREFIX_HIT], 4);
  assert.deepEqual(decodeGrid(after[0].kv).owners.filter((o) => o === 'again').length, 5);
});

test('preemption: the victim is listed as preempted and waits at the front, then resumes with a recompute', () => {
  // 12 usable blocks of 4: two requests growing to 24 tokens each (6 blocks) do not fit with the null block.
  const sched = setup({ numBlocks: 12, maxNumBatchedTokens: 32 });
  const rec = everyStep(sched);
  sched.addRequest(mkReq('old', seqPrompt(16, 100), 12));
  sched.addRequest(mkReq('new', seqPrompt(16, 300), 12));
  const records = run(sched, rec);
  const i = records.findIndex((r) => r.preempted.count > 0);
  assert.ok(i >= 0, 'some step preempted');
  assert.deepEqual(records[i].preempted.ids, ['new']);
  assert.deepEqual(records[i].waiting.map((w) => [w.reqId, w.status, w.numPreemptions]), [['new', 'preempted', 1]]);
  assert.deepEqual(records[i].running.map((r) => r.reqId), ['old']);
  const resumed = records.find((r, k) => k > i && r.admitted.ids.includes('new'))!;
  const again = resumed.running.find((r) => r.reqId === 'new')!;
  assert.equal(again.isNew, true);
  assert.equal(again.numPreemptions, 1);
  assert.ok(again.numTokens > again.numPromptTokens, 'the recompute covers its outputs too');
  assert.ok(again.numComputedTokens < again.numTokens - 1 ? again.phase === 'prefill' : again.phase === 'decode');
});

test('records are sampled in time; what happened between two is counted, not lost', () => {
  const sched = setup({ numBlocks: 200, maxNumBatchedTokens: 16 });
  let t = 0;
  const rec = new EngineViewRecorder(sched, { maxRecordsPerSecond: 10, now: () => t });
  for (let i = 0; i < 6; i++) sched.addRequest(mkReq(`r${i}`, seqPrompt(20, 1000 * i), 8));
  const records = run(sched, rec, {
    beforeStep: () => {
      t += 30; // 30 ms a step: a record every 4th step (100 ms)
    },
  });
  assert.ok(records.length >= 3);
  assert.equal(records[0].numSteps, 1);
  for (const r of records.slice(1)) assert.equal(r.numSteps, 4);
  assert.deepEqual(records.map((r) => r.step), records.map((_, i) => 1 + 4 * i));

  const idle = sched.makeStats();
  rec.onIdle(idle);
  const all = [...records, idle.engineView!];
  assert.equal(all.at(-1)!.idle, true);
  assert.deepEqual(all.at(-1)!.running, []);
  const sum = (f: (r: EngineViewRecord) => number) => all.reduce((a, r) => a + f(r), 0);
  assert.equal(sum((r) => r.numSteps), all.at(-1)!.step, 'every step counted once');
  assert.equal(sum((r) => r.admitted.count), 6);
  assert.equal(sum((r) => r.finished.count), 6);
  // Each request: its 20 prompt tokens, then 7 decodes (the 8th token is sampled, never computed).
  assert.equal(sum((r) => r.numScheduledTokensSinceLast), 6 * (20 + 7));
  assert.equal(sum((r) => r.prefixCacheQueries), 6 * 20);
});

test('a pool larger than the cell cap: each cell stands for several blocks and shows the busiest', () => {
  const sched = setup({ numBlocks: 1001 });
  const rec = everyStep(sched, { maxCells: 100 });
  sched.addRequest(mkReq('x', seqPrompt(30, 100), 2));
  const [r] = run(sched, rec);
  assert.equal(r.kv.numBlocks, 1000);
  assert.equal(r.kv.blocksPerCell, 10);
  assert.equal(r.kv.numCells, 100);
  assert.equal(r.kv.counts.reduce((a, b) => a + b, 0), 1000);
  const { states, owners } = decodeGrid(r.kv);
  assert.equal(states.length, 100);
  // 31 tokens -> 8 blocks, all in the first cell (blocks 1..10): the cell is "used" by x.
  assert.deepEqual([states[0], owners[0]], [KvBlockState.USED, 'x']);
  assert.ok(states.slice(1).every((s) => s === KvBlockState.FREE));
  assert.ok(r.kv.runs.length <= 6, 'two runs');
});
