import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockPool, FreeKVCacheBlockQueue, KVCacheBlock } from '../../src/core/kv_cache/block_pool.js';

const ids = (bs: readonly KVCacheBlock[]) => bs.map((b) => b.blockId);

test('FreeKVCacheBlockQueue: popleft, append, O(1) remove from the middle', () => {
  const blocks = Array.from({ length: 6 }, (_, i) => new KVCacheBlock(i));
  const q = new FreeKVCacheBlockQueue(blocks);
  assert.equal(q.numFreeBlocks, 6);
  assert.deepEqual(ids(q.getAllFreeBlocks()), [0, 1, 2, 3, 4, 5]);
  q.remove(blocks[3]);
  q.remove(blocks[0]);
  q.remove(blocks[5]);
  assert.deepEqual(ids(q.getAllFreeBlocks()), [1, 2, 4]);
  assert.equal(q.numFreeBlocks, 3);
  assert.equal(q.popleft().blockId, 1);
  q.append(blocks[0]);
  q.append(blocks[3]);
  assert.deepEqual(ids(q.getAllFreeBlocks()), [2, 4, 0, 3]);
  assert.deepEqual(ids(q.popleftN(2)), [2, 4]);
  assert.throws(() => q.remove(blocks[2]), /not in the free queue/);
  assert.throws(() => q.append(blocks[3]), /already in the free queue/);
  q.popleftN(2);
  assert.equal(q.numFreeBlocks, 0);
  assert.throws(() => q.popleft(), /empty/);
});

test('BlockPool: null block 0 never handed out; counts, usage; freeing too often throws', () => {
  const pool = new BlockPool(5, true);
  assert.equal(pool.nullBlock.blockId, 0);
  assert.equal(pool.getNumFreeBlocks(), 4);
  assert.equal(pool.getUsage(), 0);
  const got = pool.getNewBlocks(4);
  assert.deepEqual(ids(got), [1, 2, 3, 4]);
  assert.ok(got.every((b) => b.refCnt === 1));
  assert.equal(pool.getUsage(), 1);
  assert.throws(() => pool.getNewBlocks(1), /only 0 are free/);
  pool.freeBlocks([got[3], got[1]]);
  assert.equal(pool.getUsage(), 0.5);
  // Freed blocks join the back in the given order.
  assert.deepEqual(ids(pool.freeBlockQueue.getAllFreeBlocks()), [4, 2]);
  assert.throws(() => pool.freeBlocks([got[3]]), /freed more often/);
  pool.freeBlocks([got[0], got[2]]);
  assert.equal(pool.getNumFreeBlocks(), 4);
  assert.throws(() => new BlockPool(1, true), /at least 2 blocks/);
});

test('BlockPool: cached blocks keep their hash when freed, are evicted only when handed out again', () => {
  const pool = new BlockPool(4, true);
  const [a, b, c] = pool.getNewBlocks(3);
  pool.cacheFullBlocks([a, b, c], ['h0', 'h1'], 0, 2);
  assert.equal(pool.getCachedBlock('h0'), a);
  assert.equal(pool.getCachedBlock('h1'), b);
  assert.equal(c.blockHash, null);
  pool.freeBlocks([c, b, a]); // tail first
  assert.equal(pool.getCachedBlock('h1'), b, 'a freed block stays hit-able');
  // A hit takes the block out of the free queue and references it.
  pool.touch([a]);
  assert.equal(a.refCnt, 1);
  assert.deepEqual(ids(pool.freeBlockQueue.getAllFreeBlocks()), [c.blockId, b.blockId]);
  // Reuse: c has no hash, then b is evicted from the cache.
  const [x] = pool.getNewBlocks(1);
  assert.equal(x, c);
  assert.equal(pool.getCachedBlock('h1'), b);
  const [y] = pool.getNewBlocks(1);
  assert.equal(y, b);
  assert.equal(pool.getCachedBlock('h1'), null);
  assert.equal(b.blockHash, null);
  assert.equal(pool.cachedBlockHashToBlock.has('h1'), false);
  // Touching an in-use block just adds a reference.
  pool.touch([a]);
  assert.equal(a.refCnt, 2);
  pool.freeBlocks([a, a, x, y]);
  assert.equal(pool.getNumFreeBlocks(), 3);
});

test('BlockPool: duplicate blocks under one hash; eviction of one keeps the other', () => {
  const pool = new BlockPool(4, true);
  const [a] = pool.getNewBlocks(1);
  const [b] = pool.getNewBlocks(1);
  pool.cacheFullBlocks([a], ['h'], 0, 1);
  pool.cacheFullBlocks([b], ['h'], 0, 1);
  assert.equal(pool.cachedBlockHashToBlock.get('h')!.size, 2);
  assert.equal(pool.getCachedBlock('h'), a);
  pool.freeBlocks([a, b]);
  pool.getNewBlocks(2); // the never-used block 3, then a
  assert.equal(pool.getCachedBlock('h'), b);
});

test('BlockPool: resetPrefixCache refused while blocks are in use', () => {
  const pool = new BlockPool(4, true);
  const blocks = pool.getNewBlocks(2);
  pool.cacheFullBlocks(blocks, ['h0', 'h1'], 0, 2);
  assert.equal(pool.resetPrefixCache(), false);
  assert.equal(pool.getCachedBlock('h0'), blocks[0]);
  pool.freeBlocks(blocks);
  assert.equal(pool.resetPrefixCache(), true);
  assert.equal(pool.getCachedBlock('h0'), null);
  assert.ok(pool.blocks.every((b) => b.blockHash === null));
});
