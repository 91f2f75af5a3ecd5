// Sliding-window block release (vLLM's SlidingWindowManager.remove_skipped_blocks):
// when every layer of the model attends to at most the last `window` positions, the
// blocks that lie wholly before the window of the next token to compute are never
// read again. They go back to the pool (still in the prefix cache until evicted)
// and the request's block list holds the pool's null block in their place, so that
// the list keeps one entry per block of the sequence.
import type { BlockPool, KVCacheBlock } from './block_pool.js';

/** Tokens before the window of the first token still to compute (position numComputedTokens). */
export function numSkippedTokens(numComputedTokens: number, window: number): number {
  return Math.max(0, numComputedTokens - window + 1);
}

/**
 * Frees the request's blocks that the window has left and puts the null block in
 * their place (blocks: the request's list, changed in place). Walks back from the
 * last skipped block and stops at the first null one: those before it were freed
 * earlier. Returns how many blocks were freed.
 */
export function removeSkippedBlocks(pool: BlockPool, blocks: KVCacheBlock[], numComputedTokens: number, window: number, blockSize: number): number {
  const skipped = Math.min(Math.floor(numSkippedTokens(numComputedTokens, window) / blockSize), blocks.length);
  const freed: KVCacheBlock[] = [];
  for (let i = skipped - 1; i >= 0; i--) {
    if (blocks[i].isNull) break;
    freed.push(blocks[i]); // tail first, as KVCacheManager.free orders them
    blocks[i] = pool.nullBlock;
  }
  pool.freeBlocks(freed);
  return freed.length;
}

/**
 * The window the KV cache may drop blocks by: the largest window when every layer
 * has one, else null (a full-attention layer reads every block).
 */
export function commonSlidingWindow(windows: readonly (number | null)[]): number | null {
  if (windows.length === 0 || windows.some((w) => w === null || !(w > 0))) return null;
  return Math.max(...(windows as number[]));
}
