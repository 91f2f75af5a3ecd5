// Prefix caching through the scheduler: n > 1 siblings sharing in one step,
// hits across steps, salts, reset, and outputs identical with caching on and
// off under evictions and preemptions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Request } from '../../src/core/request.js';
import { SamplingParams, type SamplingParamsInit } from '../../src/sampling_params.js';
import { FakeRunner, assertPoolFree, blockHasher, makeScheduler, referenceGenerate, runToCompletion, seqPrompt } from './fake_runner.js';

function mkReq(id: string, prompt: number[], sp: Partial<SamplingParamsInit> = {}, cacheSalt?: string): Request {
  return new Request({
    requestId: id,
    promptTokenIds: prompt,
    samplingParams: new SamplingParams({ ignoreEos: true, maxTokens: 4, ...sp }),
    cacheSalt,
    blockHasher,
  });
}

test('n > 1: children scheduled in the same step share the prompt blocks of the first', () => {
  const sched = makeScheduler({ blockSize: 4 });
  const runner = new FakeRunner(4, 1000);
  const prompt = seqPrompt(40);
  for (let i = 0; i < 3; i++) sched.addRequest(mkReq(`${i}_parent`, prompt));
  let first = true;
  const res = runToCompletion(sched, runner, {
    onStep: (_s, out) => {
      if (!first) return;
      first = false;
      const [c0, c1, c2] = out.scheduledNewReqs;
      assert.equal(c0.numComputedTokens, 0);
      assert.equal(out.numScheduledTokens[c0.reqId], 40);
      for (const c of [c1, c2]) {
        // 40 tokens = 10 full blocks; the hit stops at 9 so that one token is computed.
        assert.equal(c.numComputedTokens, 36);
        assert.equal(out.numScheduledTokens[c.reqId], 4);
        assert.deepEqual(c.blockIds.slice(0, 9), c0.blockIds.slice(0, 9));
        assert.notEqual(c.blockIds[9], c0.blockIds[9]);
      }
      assert.equal(out.totalNumScheduledTokens, 48);
    },
  });
  assert.equal(runner.numPromptTokensComputed, 48);
  const ref = referenceGenerate('x', prompt, { maxTokens: 4, maxModelLen: 1024 });
  assert.deepEqual(
    [0, 1, 2].map((i) => [res.get(`${i}_parent`)!.tokenIds, res.get(`${i}_parent`)!.numCachedTokens]),
    [[ref.tokenIds, 0], [ref.tokenIds, 36], [ref.tokenIds, 36]],
  );
  assertPoolFree(sched);
});

test('a shared system prompt is computed once across steps; different salts never share', () => {
  const system = seqPrompt(64, 9000);
  const run = (enablePrefixCaching: boolean) => {
    const sched = makeScheduler({ enablePrefixCaching, maxNumBatchedTokens: 128 });
    const runner = new FakeRunner(4, 1000);
    const res = runToCompletion(sched, runner, {
      minSteps: 10,
      beforeStep: (step) => {
        if (step < 10) sched.addRequest(mkReq(`q${step}`, [...system, ...seqPrompt(5, 100 * step)], {}, step === 9 ? 'other-tenant' : undefined));
      },
    });
    assertPoolFree(sched);
    return { res, computed: runner.numPromptTokensComputed, stats: sched.kvCacheManager.totalPrefixCacheStats };
  };
  const on = run(true);
  const off = run(false);
  for (let i = 0; i < 10; i++) {
    assert.deepEqual(on.res.get(`q${i}`)!.tokenIds, off.res.get(`q${i}`)!.tokenIds);
    assert.equal(off.res.get(`q${i}`)!.numCachedTokens, 0);
    assert.equal(on.res.get(`q${i}`)!.numCachedTokens, i === 0 || i === 9 ? 0 : 64, `q${i}`);
  }
  assert.equal(off.computed, 10 * 69);
  assert.equal(on.computed, 69 + 8 * 5 + 69);
  assert.deepEqual([on.stats.queries, on.stats.hits], [10 * 69, 8 * 64]);
  assert.deepEqual([off.stats.queries, off.stats.hits], [0, 0]);
});

test('resetPrefixCache through the scheduler: refused while running, then nothing hits', () => {
  const sched = makeScheduler();
  const runner = new FakeRunner(4, 1000);
  sched.addRequest(mkReq('a', seqPrompt(20)));
  const out = sched.schedule();
  sched.updateFromOutput(out, runner.execute(out));
  assert.equal(sched.resetPrefixCache(), false);
  runToCompletion(sched, runner);
  assert.equal(sched.resetPrefixCache(), true);
  sched.addRequest(mkReq('b', seqPrompt(20)));
  const res = runToCompletion(sched, runner);
  assert.equal(res.get('b')!.numCachedTokens, 0);
});

/** mulberry32: a small seeded PRNG for reproducible workloads. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('outputs identical with caching on and off: shared and partial-block prefixes, evictions, preemptions', () => {
  const rand = rng(7);
  // Prefix lengths that end mid-block (block size 4) and at a block boundary.
  const prefixes = [seqPrompt(10, 20000), seqPrompt(23, 30000), seqPrompt(16, 40000)];
  const reqs = Array.from({ length: 40 }, (_, i) => {
    const prefix = prefixes[Math.floor(rand() * prefixes.length)];
    const suffix = Array.from({ length: Math.floor(rand() * 9) }, () => 3 + Math.floor(rand() * 500));
    return { id: `r${i}`, prompt: [...prefix, ...suffix], maxTokens: 3 + Math.floor(rand() * 14), at: Math.floor(rand() * 30) };
  });
  const run = (enablePrefixCaching: boolean) => {
    const sched = makeScheduler({ enablePrefixCaching, numBlocks: 24, maxNumBatchedTokens: 48 });
    const runner = new FakeRunner(4, 24);
    const res = runToCompletion(sched, runner, {
      minSteps: 30,
      beforeStep: (step) => {
        for (const r of reqs) if (r.at === step) sched.addRequest(mkReq(r.id, r.prompt, { maxTokens: r.maxTokens }));
      },
    });
    assertPoolFree(sched);
    return { res, sched, runner };
  };
  const on = run(true);
  const off = run(false);
  for (const r of reqs) {
    const ref = referenceGenerate(r.id, r.prompt, { maxTokens: r.maxTokens, maxModelLen: 1024 });
    assert.deepEqual(on.res.get(r.id)!.tokenIds, ref.tokenIds, r.id);
    assert.deepEqual(off.res.get(r.id)!.tokenIds, ref.tokenIds, r.id);
  }
  // The workload must exercise what it claims to.
  assert.ok(on.sched.totalNumPreemptions > 0 && off.sched.totalNumPreemptions > 0, 'no preemption');
  assert.ok(on.sched.kvCacheManager.totalPrefixCacheStats.hits > 0, 'no hit');
  assert.ok(on.runner.numPromptTokensComputed < off.runner.numPromptTokensComputed);
  // Evictions: the cache map is bounded by the pool, far below the distinct full blocks seen.
  assert.ok(on.sched.kvCacheManager.blockPool.cachedBlockHashToBlock.size <= 23);
});
