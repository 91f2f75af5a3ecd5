// The pool of paged KV-cache blocks (vLLM's KVCacheBlock, FreeKVCacheBlockQueue
// and BlockPool). Blocks are bookkeeping only: block i owns slots
// [i * blockSize, (i + 1) * blockSize) of every layer's KV tensors, which the
// model runner holds.
import type { BlockHash } from './block_hash.js';

export class KVCacheBlock {
  refCnt = 0;
  /** Set while the block is full and registered in the prefix cache; kept after it is freed until it is handed out again. */
  blockHash: BlockHash | null = null;
  /** Links of the free queue (null when the block is not in it). */
  prevFreeBlock: KVCacheBlock | null = null;
  nextFreeBlock: KVCacheBlock | null = null;

  constructor(
    readonly blockId: number,
    /** The placeholder block 0: never handed out, never freed. */
    readonly isNull = false,
  ) {}
}

/**
 * Free blocks in eviction order (front = evicted first), as a doubly linked
 * list through the blocks themselves so that a prefix-cache hit takes a block
 * out of the middle in O(1).
 */
export class FreeKVCacheBlockQueue {
  numFreeBlocks = 0;
  // Sentinels: the list is head <-> ... <-> tail, so no end is ever a special case.
  private readonly head = new KVCacheBlock(-1);
  private readonly tail = new KVCacheBlock(-1);

  constructor(blocks: readonly KVCacheBlock[]) {
    this.head.nextFreeBlock = this.tail;
    this.tail.prevFreeBlock = this.head;
    for (const b of blocks) this.append(b);
  }

  popleft(): KVCacheBlock {
    const first = this.head.nextFreeBlock!;
    if (first === this.tail) throw new Error('No free KV-cache block left to pop (the free queue is empty).');
    this.remove(first);
    return first;
  }

  popleftN(n: number): KVCacheBlock[] {
    const out: KVCacheBlock[] = [];
    for (let i = 0; i < n; i++) out.push(this.popleft());
    return out;
  }

  /** O(1): unlinks a block from anywhere in the queue. */
  remove(block: KVCacheBlock): void {
    const prev = block.prevFreeBlock;
    const next = block.nextFreeBlock;
    if (prev === null || next === null) {
      throw new Error(`KV-cache block ${block.blockId} is not in the free queue.`);
    }
    prev.nextFreeBlock = next;
    next.prevFreeBlock = prev;
    block.prevFreeBlock = null;
    block.nextFreeBlock = null;
    this.numFreeBlocks--;
  }

  append(block: KVCacheBlock): void {
    if (block.prevFreeBlock !== null || block.nextFreeBlock !== null) {
      throw new Error(`KV-cache block ${block.blockId} is already in the free queue.`);
    }
    const last = this.tail.prevFreeBlock!;
    last.nextFreeBlock = block;
    block.prevFreeBlock = last;
    block.nextFreeBlock = this.tail;
    this.tail.prevFreeBlock = block;
    this.numFreeBlocks++;
  }

  /** Front to back (for tests and debugging). */
  getAllFreeBlocks(): KVCacheBlock[] {
    const out: KVCacheBlock[] = [];
    for (let b = this.head.nextFreeBlock!; b !== this.tail; b = b.nextFreeBlock!) out.push(b);
    return out;
  }
}

export class BlockPool {
  readonly blocks: KVCacheBlock[];
  readonly freeBlockQueue: FreeKVCacheBlockQueue;
  /**
   * Full blocks by hash, for prefix-cache lookups: in use, or free but not yet
   * evicted. Identical blocks may coexist (two requests computed the same block
   * before either was cached): block tables are append-only, so they are not
   * merged; a lookup returns the first.
   */
  readonly cachedBlockHashToBlock = new Map<BlockHash, Map<number, KVCacheBlock>>();
  /** Block 0: a placeholder that pads block tables (sliding window later); never handed out. */
  readonly nullBlock: KVCacheBlock;

  constructor(
    readonly numBlocks: number,
    readonly enableCaching: boolean,
  ) {
    if (!Number.isInteger(numBlocks) || numBlocks < 2) {
      throw new RangeError(
        `The KV cache needs at least 2 blocks (block 0 is reserved), got ${numBlocks}: give it more memory or a smaller block size.`,
      );
    }
    this.blocks = Array.from({ length: numBlocks }, (_, i) => new KVCacheBlock(i, i === 0));
    this.freeBlockQueue = new FreeKVCacheBlockQueue(this.blocks);
    this.nullBlock = this.freeBlockQueue.popleft();
  }

  getNumFreeBlocks(): number {
    return this.freeBlockQueue.numFreeBlocks;
  }

  /** Fraction of the usable blocks (all but the null block) in use, 0..1. */
  getUsage(): number {
    const total = this.numBlocks - 1;
    return total > 0 ? 1 - this.getNumFreeBlocks() / total : 0;
  }

  getCachedBlock(blockHash: BlockHash): KVCacheBlock | null {
    const blocks = this.cachedBlockHashToBlock.get(blockHash);
    if (blocks === undefined) return null;
    for (const b of blocks.values()) return b;
    return null;
  }

  /**
   * Takes `n` blocks from the front of the free queue (least recently freed
   * first); a block that still carries a hash is evicted from the prefix cache
   * now, on reuse.
   */
  getNewBlocks(n: number): KVCacheBlock[] {
    if (n > this.getNumFreeBlocks()) {
      throw new Error(`Cannot get ${n} free KV-cache blocks: only ${this.getNumFreeBlocks()} are free.`);
    }
    const out = this.freeBlockQueue.popleftN(n);
    for (const b of out) {
      if (this.enableCaching) this.maybeEvictCachedBlock(b);
      b.refCnt++;
    }
    return out;
  }

  private maybeEvictCachedBlock(block: KVCacheBlock): boolean {
    const hash = block.blockHash;
    if (hash === null) return false;
    block.blockHash = null;
    const blocks = this.cachedBlockHashToBlock.get(hash);
    if (blocks === undefined || !blocks.delete(block.blockId)) return false;
    if (blocks.size === 0) this.cachedBlockHashToBlock.delete(hash);
    return true;
  }

  /**
   * Registers blocks[numCachedBlocks, numFullBlocks) of a request under their
   * hashes (`blockHashes` must cover them).
   */
  cacheFullBlocks(
    blocks: readonly KVCacheBlock[],
    blockHashes: readonly BlockHash[],
    numCachedBlocks: number,
    numFullBlocks: number,
  ): void {
    if (numCachedBlocks >= numFullBlocks) return;
    if (blockHashes.length < numFullBlocks) {
      throw new Error(
        `Cannot cache ${numFullBlocks} full blocks with ${blockHashes.length} block hashes: the request was built without the prefix-cache block hasher.`,
      );
    }
    for (let i = numCachedBlocks; i < numFullBlocks; i++) {
      const blk = blocks[i];
      if (blk.isNull) continue;
      if (blk.blockHash !== null) {
        // Already cached (a prefix-cache hit): its hash is this one.
        continue;
      }
      const hash = blockHashes[i];
      blk.blockHash = hash;
      let byId = this.cachedBlockHashToBlock.get(hash);
      if (byId === undefined) {
        byId = new Map();
        this.cachedBlockHashToBlock.set(hash, byId);
      }
      byId.set(blk.blockId, blk);
    }
  }

  /** A prefix-cache hit: the blocks gain a reference and leave the free queue if they were in it. */
  touch(blocks: readonly KVCacheBlock[]): void {
    for (const b of blocks) {
      if (b.refCnt === 0 && !b.isNull) this.freeBlockQueue.remove(b);
      b.refCnt++;
    }
  }

  /**
   * Drops one reference from each block; blocks reaching zero join the back of
   * the free queue in the given order (so the first is evicted first). They keep
   * their hash: a later request can still hit them.
   */
  freeBlocks(orderedBlocks: Iterable<KVCacheBlock>): void {
    for (const b of orderedBlocks) {
      if (b.isNull) continue;
      if (b.refCnt <= 0) throw new Error(`KV-cache block ${b.blockId} freed more often than it was allocated.`);
      b.refCnt--;
      if (b.refCnt === 0) this.freeBlockQueue.append(b);
    }
  }

  /**
   * Forgets every cached hash (after a weight update, or between benchmark
   * runs). Refused (false) while any block is in use: running requests would
   * keep blocks whose hashes the cache no longer knows.
   */
  resetPrefixCache(): boolean {
    const numUsed = this.numBlocks - 1 - this.getNumFreeBlocks();
    if (numUsed > 0) return false;
    this.cachedBlockHashToBlock.clear();
    for (const b of this.blocks) b.blockHash = null;
    return true;
  }
}
