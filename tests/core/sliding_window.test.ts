// Sliding-window block release: blocks wholly before the window of the next token
// go back to the pool (replaced by the null block in the request's list), during
// chunked prefill and decode; freed blocks stay in the prefix cache until evicted;
// a model whose every layer slides (Mistral's fixture) keeps HF's greedy tokens
// while holding only the blocks its window needs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Request, RequestStatus } from '../../src/core/request.js';
import { KVCacheManager } from '../../src/core/kv_cache/kv_cache_manager.js';
import { getRequestBlockHasher } from '../../src/core/kv_cache/block_hash.js';
import { commonSlidingWindow, numSkippedTokens } from '../../src/core/kv_cache/sliding_window.js';
import { SamplingParams } from '../../src/sampling_params.js';
import { LLM } from '../../src/index.js';
import { loadCompactReference } from '../helpers/compact_reference.js';

const BS = 4;
const WINDOW = 8;
let nextId = 0;
const range = (a: number, n: number) => Array.from({ length: n }, (_, i) => a + i);

function req(prompt: number[]): Request {
  return new Request({
    requestId: `w${nextId++}`, promptTokenIds: prompt, samplingParams: new SamplingParams({}), cacheSalt: null,
    blockHasher: getRequestBlockHasher(BS),
  });
}

const mgr = (numBlocks = 64, slidingWindow: number | null = WINDOW) =>
  new KVCacheManager({ numBlocks, blockSize: BS, maxModelLen: 4096, enableCaching: true, slidingWindow });

/** Runs `n` tokens through the manager as one scheduled chunk. */
function step(m: KVCacheManager, r: Request, n: number): void {
  const hit = r.numComputedTokens === 0 ? m.getComputedBlocks(r) : { blocks: [], numComputedTokens: 0 };
  const got = m.allocateSlots(r, n - hit.numComputedTokens, hit.numComputedTokens, hit.blocks);
  assert.ok(got !== null, 'allocation failed');
  r.numComputedTokens += n;
  r.status = RequestStatus.RUNNING;
}

/** Blocks the request holds that are real (not the null block). */
const live = (m: KVCacheManager, r: Request) => m.getBlocks(r.requestId).filter((b) => !b.isNull).length;

test('numSkippedTokens and commonSlidingWindow', () => {
  assert.equal(numSkippedTokens(5, 8), 0);
  assert.equal(numSkippedTokens(8, 8), 1); // position 8 reads 1..8
  assert.equal(numSkippedTokens(20, 8), 13);
  assert.equal(commonSlidingWindow([8, 8]), 8);
  assert.equal(commonSlidingWindow([4, 8]), 8);
  assert.equal(commonSlidingWindow([8, null]), null); // a global layer reads every block
  assert.equal(commonSlidingWindow([]), null);
});

test('chunked prefill and decode free the blocks that left the window; the list keeps one entry per block', () => {
  const m = mgr();
  const free0 = m.getNumFreeBlocks();
  const r = req(range(1, 30));
  for (let done = 0; done < 30; done += 5) {
    step(m, r, 5);
    // Before this chunk, tokens [0, done - WINDOW + 1) were out of every next query's window.
    const skippedBlocks = Math.floor(numSkippedTokens(done, WINDOW) / BS);
    const blocks = m.getBlocks(r.requestId);
    assert.equal(blocks.length, Math.ceil((done + 5) / BS));
    blocks.forEach((b, i) => assert.equal(b.isNull, i < skippedBlocks, `block ${i} after ${done + 5} tokens`));
  }
  // Decode: 40 more tokens, one at a time; never more than the window's blocks + the one being written.
  for (let i = 0; i < 40; i++) {
    r.appendOutputTokenIds(7);
    step(m, r, 1);
    assert.ok(live(m, r) <= Math.ceil(WINDOW / BS) + 1, `${live(m, r)} live blocks at ${r.numComputedTokens} tokens`);
  }
  assert.equal(free0 - m.getNumFreeBlocks(), live(m, r));
  m.free(r);
  assert.equal(m.getNumFreeBlocks(), free0);
});

test('without a window nothing is freed early; with prefix caching off the window still frees', () => {
  const m = mgr(64, null);
  const full = req(range(1, 30));
  step(m, full, 30);
  full.appendOutputTokenIds(7);
  step(m, full, 1);
  assert.equal(live(m, full), 8);
  // Prefix caching off: blocks still leave the window.
  const off = new KVCacheManager({ numBlocks: 64, blockSize: BS, maxModelLen: 4096, enableCaching: false, slidingWindow: WINDOW });
  const r = req(range(1, 30));
  off.allocateSlots(r, 30);
  r.numComputedTokens = 30;
  off.allocateSlots(r, 1);
  assert.equal(off.getBlocks(r.requestId).filter((b) => b.isNull).length, Math.floor(numSkippedTokens(30, WINDOW) / BS));
});

test('freed blocks stay in the prefix cache: the same prompt later hits its whole cached prefix', () => {
  const m = mgr();
  const prompt = range(100, 24);
  const a = req(prompt);
  step(m, a, 12);
  step(m, a, 12); // frees the blocks before token 12 - 8 + 1
  assert.ok(m.getBlocks(a.requestId)[0].isNull);
  m.free(a);
  const b = req(prompt);
  const hit = m.getComputedBlocks(b);
  assert.equal(hit.numComputedTokens, 20); // 5 full blocks; the last token is always recomputed
});

test('Mistral (every layer slides): HF greedy tokens with blocks freed as the window moves, chunked or not', async () => {
  const dir = 'tests/fixtures/mistral-swa-fp16';
  const { cases } = loadCompactReference(dir);
  for (const maxNumBatchedTokens of [3, 64]) {
    const llm = await LLM.create({
      model: dir, tokenizer: 'models/tiny-llama-kjv', useTqdm: false, maxModelLen: 64, maxNumSeqs: 4, blockSize: BS, maxNumBatchedTokens,
    });
    try {
      const core = llm.engine.engineCore;
      assert.equal(core.cacheConfig.slidingWindow, 8);
      const outs = await llm.generate(cases.map((c) => c.prompt), cases.map((c) => ({ temperature: 0, maxTokens: c.generatedIds.length })));
      // The fixture's continuations have no near ties (families.test.ts checks all of them).
      outs.forEach((o, i) => assert.deepEqual(o.outputs[0].tokenIds, cases[i].generatedIds, `case ${i}`));
      // A long request holds at most the window's blocks plus the one being written.
      const r = req(range(1, 50));
      const m = core.scheduler.kvCacheManager;
      step(m, r, 50);
      r.appendOutputTokenIds(5);
      step(m, r, 1);
      assert.ok(live(m, r) <= Math.ceil(8 / BS) + 1);
      m.free(r);
      assert.equal(core.numFreeBlocks, core.cacheConfig.numBlocks - 1, 'every KV block is free again');
    } finally {
      llm.close();
    }
  }
});
