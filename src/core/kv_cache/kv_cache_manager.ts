// Per-request KV blocks on top of the BlockPool, with automatic prefix caching
// (vLLM's KVCacheManager + the full-attention SingleTypeKVCacheManager, folded
// into one class while every layer uses full attention).
//
// NOTE: when every layer slides (slidingWindow set), allocateSlots first frees the
// blocks that left the window (./sliding_window.ts, vLLM's SlidingWindowManager);
// with global layers too (Gemma 2/3) every block stays, as one block table serves
// all layers. vLLM's hybrid allocator (a manager per attention type) is the next step.
import type { Request } from '../request.js';
import { type BlockHash, type RequestBlockHasher, getRequestBlockHasher } from './block_hash.js';
import { BlockPool, type KVCacheBlock } from './block_pool.js';
import { removeSkippedBlocks } from './sliding_window.js';

/** Prefix-cache counters, in tokens as vLLM counts them (queries = tokens looked up, hits = tokens found). */
export interface PrefixCacheStats {
  requests: number;
  queries: number;
  hits: number;
  /** Lookups of requests resumed after a preemption (kept apart, as in vLLM). */
  preemptedRequests: number;
  preemptedQueries: number;
  preemptedHits: number;
}

export function emptyPrefixCacheStats(): PrefixCacheStats {
  return { requests: 0, queries: 0, hits: 0, preemptedRequests: 0, preemptedQueries: 0, preemptedHits: 0 };
}

export interface KVCacheManagerConfig {
  /** Blocks in the pool, block 0 (the null block) included. */
  numBlocks: number;
  blockSize: number;
  maxModelLen: number;
  enableCaching: boolean;
  /** Every layer's window is at most this (null: some layer attends to everything): blocks that leave it are freed. */
  slidingWindow?: number | null;
}

export interface ComputedBlocks {
  /** The cached full blocks of the request's longest cached prefix. */
  blocks: KVCacheBlock[];
  /** Tokens they hold: blocks.length * blockSize. */
  numComputedTokens: number;
}

const cdiv = (a: number, b: number): number => Math.ceil(a / b);

export class KVCacheManager {
  readonly blockSize: number;
  readonly maxModelLen: number;
  readonly enableCaching: boolean;
  readonly slidingWindow: number | null;
  readonly blockPool: BlockPool;
  /** Hashes requests' full blocks; null when prefix caching is off. */
  readonly blockHasher: RequestBlockHasher | null;

  private readonly reqToBlocks = new Map<string, KVCacheBlock[]>();
  /** Per request: how many of its leading blocks are registered in the prefix cache. */
  private readonly numCachedBlock = new Map<string, number>();
  /** Since the last makePrefixCacheStats(). */
  private stepStats = emptyPrefixCacheStats();
  /** Since startup. */
  readonly totalPrefixCacheStats = emptyPrefixCacheStats();

  constructor(cfg: KVCacheManagerConfig) {
    if (!Number.isInteger(cfg.blockSize) || cfg.blockSize <= 0) {
      throw new RangeError(`blockSize must be a positive integer, got ${cfg.blockSize}.`);
    }
    this.blockSize = cfg.blockSize;
    this.maxModelLen = cfg.maxModelLen;
    this.enableCaching = cfg.enableCaching;
    this.slidingWindow = cfg.slidingWindow ?? null;
    this.blockPool = new BlockPool(cfg.numBlocks, cfg.enableCaching);
    this.blockHasher = cfg.enableCaching ? getRequestBlockHasher(cfg.blockSize) : null;
  }

  /** Fraction of usable blocks in use, 0..1. */
  get usage(): number {
    return this.blockPool.getUsage();
  }

  getNumFreeBlocks(): number {
    return this.blockPool.getNumFreeBlocks();
  }

  /**
   * The longest run of cached full blocks at the start of the request's tokens.
   * The hit leaves at least one token to compute (the model needs the last
   * position's logits), and is empty when caching is off or the request wants
   * prompt logprobs. The blocks are not yet referenced: pass them to
   * allocateSlots in the same step.
   */
  getComputedBlocks(request: Request): ComputedBlocks {
    if (!this.enableCaching || request.skipReadingPrefixCache) return { blocks: [], numComputedTokens: 0 };
    // NOTE: capped at numTokens - 1: when every token is cached, the last one must
    // still run to produce logits, which recomputes that whole last block.
    const maxCacheHitLength = request.numTokens - 1;
    const blocks = this.findLongestCacheHit(request.blockHashes, maxCacheHitLength);
    return { blocks, numComputedTokens: blocks.length * this.blockSize };
  }

  private findLongestCacheHit(blockHashes: readonly BlockHash[], maxLength: number): KVCacheBlock[] {
    const maxNumBlocks = Math.min(Math.floor(maxLength / this.blockSize), blockHashes.length);
    const hit: KVCacheBlock[] = [];
    for (let i = 0; i < maxNumBlocks; i++) {
      const blk = this.blockPool.getCachedBlock(blockHashes[i]);
      if (blk === null) break;
      hit.push(blk);
    }
    return hit;
  }

  /**
   * Counts one lookup: the request's tokens as queries, the hit as hits. The
   * scheduler calls it once per successful schedule (a request that waits for
   * blocks is not counted again each step).
   */
  recordPrefixCacheStats(request: Request, numHitTokens: number): void {
    if (!this.enableCaching || request.skipReadingPrefixCache) return;
    for (const s of [this.stepStats, this.totalPrefixCacheStats]) {
      if (request.numPreemptions > 0) {
        s.preemptedRequests++;
        s.preemptedQueries += request.numTokens;
        s.preemptedHits += numHitTokens;
      } else {
        s.requests++;
        s.queries += request.numTokens;
        s.hits += numHitTokens;
      }
    }
  }

  /** The counters since the last call (and resets them), as vLLM's make_prefix_cache_stats. */
  makePrefixCacheStats(): PrefixCacheStats {
    const s = this.stepStats;
    this.stepStats = emptyPrefixCacheStats();
    return s;
  }

  private getNumBlocksToAllocate(requestId: string, numTokens: number, newComputedBlocks: readonly KVCacheBlock[]): number {
    const numRequired = cdiv(numTokens, this.blockSize);
    const held = this.reqToBlocks.get(requestId)?.length ?? 0;
    const numNewBlocks = Math.max(0, numRequired - newComputedBlocks.length - held);
    // A hit block with no reference sits in the free queue: taking it uses up a free block too.
    let numEvictableComputed = 0;
    for (const b of newComputedBlocks) if (b.refCnt === 0 && !b.isNull) numEvictableComputed++;
    return numNewBlocks + numEvictableComputed;
  }

  /**
   * Makes room for `numNewTokens` more tokens of the request after its
   * numComputedTokens + numNewComputedTokens (the prefix-cache hit, whose
   * blocks are `newComputedBlocks`, taken on the request's first schedule).
   * Returns the newly allocated blocks, or null when the pool cannot supply
   * them (nothing changes then).
   *
   * NOTE: the request's full blocks, up to the tokens computed in this very
   * step, are registered in the prefix cache right away (as vLLM does), so a
   * request scheduled later in the same step (an n > 1 sibling) hits them. The
   * attention backend must therefore write every token's KV of a layer before
   * any request of the batch attends in that layer.
   */
  allocateSlots(
    request: Request,
    numNewTokens: number,
    numNewComputedTokens = 0,
    newComputedBlocks: readonly KVCacheBlock[] = [],
  ): KVCacheBlock[] | null {
    if (!(numNewTokens > 0)) throw new RangeError(`numNewTokens must be positive, got ${numNewTokens}.`);
    const requestId = request.requestId;
    const numComputedTokens = request.numComputedTokens + numNewComputedTokens;
    const numTokensNeedSlot = Math.min(numComputedTokens + numNewTokens, this.maxModelLen);
    const held = this.reqToBlocks.get(requestId);
    if (this.slidingWindow !== null && held !== undefined) {
      removeSkippedBlocks(this.blockPool, held, request.numComputedTokens, this.slidingWindow, this.blockSize);
    }
    const numBlocksToAllocate = this.getNumBlocksToAllocate(requestId, numTokensNeedSlot, newComputedBlocks);
    if (numBlocksToAllocate > this.blockPool.getNumFreeBlocks()) return null;

    let reqBlocks = this.reqToBlocks.get(requestId);
    if (reqBlocks === undefined) {
      reqBlocks = [];
      this.reqToBlocks.set(requestId, reqBlocks);
    }
    if (newComputedBlocks.length > 0) {
      if (!this.enableCaching) throw new Error('Prefix-cache hit blocks were passed while prefix caching is off.');
      if (reqBlocks.length > 0) {
        throw new Error(`Request ${requestId} already holds blocks: prefix-cache hits apply only to its first schedule.`);
      }
      this.blockPool.touch(newComputedBlocks);
      reqBlocks.push(...newComputedBlocks);
      this.numCachedBlock.set(requestId, newComputedBlocks.length);
    }

    const numNew = Math.max(0, cdiv(numTokensNeedSlot, this.blockSize) - reqBlocks.length);
    const newBlocks = numNew > 0 ? this.blockPool.getNewBlocks(numNew) : [];
    reqBlocks.push(...newBlocks);

    if (this.enableCaching) {
      const numTokensToCache = Math.min(numComputedTokens + numNewTokens, request.numTokens);
      this.cacheBlocks(request, reqBlocks, numTokensToCache);
    }
    return newBlocks;
  }

  private cacheBlocks(request: Request, reqBlocks: readonly KVCacheBlock[], numTokens: number): void {
    const numFullBlocks = Math.floor(numTokens / this.blockSize);
    const numCached = this.numCachedBlock.get(request.requestId) ?? 0;
    if (numCached >= numFullBlocks) return;
    this.blockPool.cacheFullBlocks(reqBlocks, request.blockHashes, numCached, numFullBlocks);
    this.numCachedBlock.set(request.requestId, numFullBlocks);
  }

  /**
   * Releases the request's blocks, tail first: blocks that reach refCnt 0 join
   * the free queue in that order, so eviction takes a chain's tail before its
   * head (the head is the part other prompts are most likely to share).
   */
  free(request: Request): void {
    const blocks = this.reqToBlocks.get(request.requestId);
    this.reqToBlocks.delete(request.requestId);
    this.numCachedBlock.delete(request.requestId);
    if (blocks !== undefined) this.blockPool.freeBlocks(blocks.slice().reverse());
  }

  getBlocks(requestId: string): readonly KVCacheBlock[] {
    return this.reqToBlocks.get(requestId) ?? [];
  }

  getBlockIds(requestId: string): number[] {
    return this.getBlocks(requestId).map((b) => b.blockId);
  }

  /** Forgets every cached block; false (nothing done) while a request still holds blocks. */
  resetPrefixCache(): boolean {
    return this.blockPool.resetPrefixCache();
  }
}
