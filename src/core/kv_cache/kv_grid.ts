// The KV cache as the engine view draws it: each block's state (free, cached,
// used, prefix hit, shared) and holder, folded into at most `maxCells` cells and
// run-length encoded (see core/engine_view.ts). O(numBlocks) per call: the engine
// view samples steps, so this runs a few times a second at most, never per step.
import { type KvGridRecord, KvBlockState } from '../engine_view.js';
import type { BlockPool, KVCacheBlock } from './block_pool.js';

/** Cells drawn at most: beyond this many usable blocks, a cell stands for several. */
export const MAX_KV_GRID_CELLS = 16384;

/** A request that holds blocks, with how many of its leading blocks came from the prefix cache. */
export interface BlockHolder {
  reqId: string;
  blocks: readonly KVCacheBlock[];
  numHitBlocks: number;
}

function blockState(b: KVCacheBlock, hit: boolean): KvBlockState {
  if (b.refCnt > 1) return KvBlockState.SHARED;
  if (b.refCnt === 1) return hit ? KvBlockState.PREFIX_HIT : KvBlockState.USED;
  return b.blockHash !== null ? KvBlockState.CACHED : KvBlockState.FREE;
}

export function encodeKvGrid(pool: BlockPool, blockSize: number, holders: readonly BlockHolder[], maxCells = MAX_KV_GRID_CELLS): KvGridRecord {
  const numBlocks = pool.numBlocks - 1;
  // Per block id: the index of its first holder (-1: none), and whether that holder hit it in the prefix cache.
  const owner = new Int32Array(pool.numBlocks).fill(-1);
  const hit = new Uint8Array(pool.numBlocks);
  const owners: string[] = [];
  for (const h of holders) {
    if (h.blocks.length === 0) continue;
    const idx = owners.push(h.reqId) - 1;
    h.blocks.forEach((b, j) => {
      if (b.isNull || owner[b.blockId] !== -1) return;
      owner[b.blockId] = idx;
      hit[b.blockId] = j < h.numHitBlocks ? 1 : 0;
    });
  }
  const blocksPerCell = Math.max(1, Math.ceil(numBlocks / maxCells));
  const numCells = Math.ceil(numBlocks / blocksPerCell);
  const counts = [0, 0, 0, 0, 0];
  const runs: number[] = [];
  for (let c = 0; c < numCells; c++) {
    // A cell shows its most interesting block (the highest state), and that block's holder.
    let state: number = KvBlockState.FREE;
    let cellOwner = -1;
    const end = Math.min(numBlocks, (c + 1) * blocksPerCell);
    for (let id = 1 + c * blocksPerCell; id <= end; id++) {
      const s = blockState(pool.blocks[id], hit[id] === 1);
      counts[s]++;
      if (s > state || (s === state && cellOwner === -1)) {
        state = s;
        cellOwner = owner[id];
      }
    }
    const n = runs.length;
    if (n > 0 && runs[n - 3] === state && runs[n - 2] === cellOwner) runs[n - 1]++;
    else runs.push(state, cellOwner, 1);
  }
  return { blockSize, numBlocks, blocksPerCell, numCells, runs, owners, counts };
}
