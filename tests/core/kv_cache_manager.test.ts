import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Request, RequestStatus } from '../../src/core/request.js';
import { KVCacheManager } from '../../src/core/kv_cache/kv_cache_manager.js';
import { getRequestBlockHasher } from '../../src/core/kv_cache/block_hash.js';
import { SamplingParams } from '../../src/sampling_params.js';

const BS = 4;
let nextId = 0;

function req(prompt: number[], o: { salt?: string; promptLogprobs?: number } = {}): Request {
  return new Request({
    requestId: `r${nextId++}`,
    promptTokenIds: prompt,
    samplingParams: new SamplingParams({ promptLogprobs: o.promptLogprobs ?? null }),
    cacheSalt: o.salt ?? null,
    blockHasher: getRequestBlockHasher(BS),
  });
}

function mgr(numBlocks = 64, enableCaching = true): KVCacheManager {
  return new KVCacheManager({ numBlocks, blockSize: BS, maxModelLen: 4096, enableCaching });
}

/** Schedules the whole prompt as the scheduler does: lookup, allocate, mark computed. */
function admit(m: KVCacheManager, r: Request): { hit: number; blockIds: number[] } {
  const { blocks, numComputedTokens } = m.getComputedBlocks(r);
  const got = m.allocateSlots(r, r.numTokens - numComputedTokens, numComputedTokens, blocks);
  assert.ok(got !== null, 'allocation failed');
  m.recordPrefixCacheStats(r, numComputedTokens);
  r.numComputedTokens = r.numTokens;
  r.status = RequestStatus.RUNNING;
  return { hit: numComputedTokens, blockIds: m.getBlockIds(r.requestId) };
}

const range = (a: number, n: number) => Array.from({ length: n }, (_, i) => a + i);

test('prefix cache: a shared full-block prefix hits the same blocks; a partial last block is not shared', () => {
  const m = mgr();
  const a = req(range(100, 10)); // blocks [100..103] [104..107] [108 109]
  const ra = admit(m, a);
  assert.equal(ra.hit, 0);
  assert.equal(ra.blockIds.length, 3);
  // Same 10 tokens then more: only the 2 full blocks are hits, not the 2 tokens of A's partial block.
  const b = req([...range(100, 10), 7, 7, 7, 7]);
  const rb = admit(m, b);
  assert.equal(rb.hit, 8);
  assert.deepEqual(rb.blockIds.slice(0, 2), ra.blockIds.slice(0, 2));
  assert.notEqual(rb.blockIds[2], ra.blockIds[2]);
  assert.equal(m.blockPool.blocks[ra.blockIds[0]].refCnt, 2);
  // Diverging in the second block: one block of hit.
  const c = req([...range(100, 5), 1, 1, 1, 1, 1]);
  assert.equal(admit(m, c).hit, 4);
  for (const r of [a, b, c]) m.free(r);
  assert.equal(m.getNumFreeBlocks(), 63);
});

test('prefix cache: the hit leaves at least one token to compute', () => {
  const m = mgr();
  admit(m, req(range(0, 8)));
  // All 8 tokens cached: only 1 block may hit (cap 7 tokens), the last block is recomputed.
  assert.equal(m.getComputedBlocks(req(range(0, 8))).numComputedTokens, 4);
  assert.equal(m.getComputedBlocks(req(range(0, 9))).numComputedTokens, 8);
  assert.equal(m.getComputedBlocks(req(range(0, 4))).numComputedTokens, 0);
});

test('prefix cache: different cacheSalt never share; the same salt does', () => {
  const m = mgr();
  const p = range(50, 12);
  admit(m, req(p, { salt: 'alice' }));
  assert.equal(m.getComputedBlocks(req([...p, 1], { salt: 'bob' })).numComputedTokens, 0);
  assert.equal(m.getComputedBlocks(req([...p, 1])).numComputedTokens, 0);
  assert.equal(m.getComputedBlocks(req([...p, 1], { salt: 'alice' })).numComputedTokens, 12);
  admit(m, req(p));
  assert.equal(m.getComputedBlocks(req([...p, 1])).numComputedTokens, 12);
  assert.equal(m.getComputedBlocks(req([...p, 1], { salt: 'bob' })).numComputedTokens, 0);
});

test('prefix cache: promptLogprobs requests skip the lookup but still fill the cache; off = no hits', () => {
  const m = mgr();
  const p = range(10, 9);
  const first = admit(m, req(p, { promptLogprobs: 1 }));
  assert.equal(first.hit, 0);
  assert.equal(admit(m, req(p, { promptLogprobs: 0 })).hit, 0);
  assert.equal(admit(m, req(p)).hit, 8, 'blocks computed by a promptLogprobs request are reusable');
  const off = mgr(64, false);
  admit(off, req(p));
  assert.equal(off.getComputedBlocks(req(p)).numComputedTokens, 0);
  assert.equal(off.blockPool.cachedBlockHashToBlock.size, 0);
});

test('prefix cache stats: queries and hits in tokens; preempted lookups kept apart; promptLogprobs not counted', () => {
  const m = mgr();
  admit(m, req(range(0, 10))); // 10 queried, 0 hit
  admit(m, req(range(0, 13))); // 13 queried, 8 hit
  admit(m, req(range(0, 13), { promptLogprobs: 0 })); // not a lookup
  const r = req(range(0, 6));
  r.numPreemptions = 1;
  admit(m, r); // preempted: 6 queried, 4 hit
  const s = m.makePrefixCacheStats();
  assert.deepEqual(s, { requests: 2, queries: 23, hits: 8, preemptedRequests: 1, preemptedQueries: 6, preemptedHits: 4 });
  assert.deepEqual(m.makePrefixCacheStats().queries, 0, 'reset after each call');
  assert.equal(m.totalPrefixCacheStats.queries, 23);
});

test('eviction is LRU with chain tails first; a hit takes blocks back out of the free queue', () => {
  const m = mgr(5); // 4 usable blocks
  const a = req(range(200, 13)); // 3 full blocks + 1 partial = all 4 blocks
  const ra = admit(m, a);
  assert.equal(m.getNumFreeBlocks(), 0);
  m.free(a);
  // Freed tail first: partial block, then block 2, 1, 0 of the chain.
  assert.deepEqual(
    m.blockPool.freeBlockQueue.getAllFreeBlocks().map((b) => b.blockId),
    ra.blockIds.slice().reverse(),
  );
  const probe = () => m.getComputedBlocks(req(range(200, 14))).numComputedTokens;
  assert.equal(probe(), 12);
  const x = req([1, 2, 3]); // takes A's (unhashed) partial block
  admit(m, x);
  assert.equal(probe(), 12);
  const y = req([4, 5, 6]); // evicts A's third block, the chain's tail
  admit(m, y);
  assert.equal(probe(), 8);
  m.free(x);
  // A hit on the head: the two cached blocks leave the free queue.
  const z = req([...range(200, 8), 9]);
  const rz = admit(m, z);
  assert.equal(rz.hit, 8);
  assert.deepEqual(rz.blockIds.slice(0, 2), ra.blockIds.slice(0, 2));
  assert.equal(m.getNumFreeBlocks(), 0);
  for (const r of [y, z]) m.free(r);
  assert.equal(m.getNumFreeBlocks(), 4);
  assert.ok(m.blockPool.blocks.every((b) => b.refCnt === 0));
});

test('allocateSlots: null (and nothing changed) when the pool cannot supply; evictable hit blocks count as used', () => {
  const m = mgr(6); // 5 usable
  const a = req(range(0, 9)); // 3 blocks
  admit(m, a);
  m.free(a); // 2 cached full blocks + 1 plain, all free
  const b = req([...range(0, 8), ...range(500, 12)]); // 20 tokens = 5 blocks, 2 of them hits
  const { blocks, numComputedTokens } = m.getComputedBlocks(b);
  assert.equal(numComputedTokens, 8);
  // 16 new tokens => 6 blocks in all: one too many.
  assert.equal(m.allocateSlots(b, 16, numComputedTokens, blocks), null);
  assert.equal(m.getNumFreeBlocks(), 5);
  assert.ok(blocks.every((blk) => blk.refCnt === 0));
  assert.deepEqual(m.getBlockIds(b.requestId), []);
  const got = m.allocateSlots(b, 12, numComputedTokens, blocks);
  assert.ok(got !== null);
  assert.equal(got.length, 3);
  assert.equal(m.getNumFreeBlocks(), 0);
  // Decode growth: one more token needs a sixth block.
  b.numComputedTokens = 20;
  b.appendOutputTokenIds(1);
  assert.equal(m.allocateSlots(b, 1), null);
  m.free(b);
  assert.equal(m.getNumFreeBlocks(), 5);
});

test('allocateSlots caches full blocks as soon as they are scheduled (a same-step sibling hits them)', () => {
  const m = mgr();
  const p = range(300, 10);
  const a = req(p);
  const { blocks } = m.getComputedBlocks(a);
  m.allocateSlots(a, 10, 0, blocks);
  // Before A's step ran, a sibling with the same prompt already hits A's 2 full blocks.
  assert.equal(m.getComputedBlocks(req(p)).numComputedTokens, 8);
});

test('resetPrefixCache: refused while blocks are held; afterwards nothing hits', () => {
  const m = mgr();
  const a = req(range(0, 9));
  admit(m, a);
  assert.equal(m.resetPrefixCache(), false);
  m.free(a);
  assert.equal(m.getComputedBlocks(req(range(0, 9))).numComputedTokens, 8);
  assert.equal(m.resetPrefixCache(), true);
  assert.equal(m.getComputedBlocks(req(range(0, 9))).numComputedTokens, 0);
});

