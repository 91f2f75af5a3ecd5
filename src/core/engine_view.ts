// The engine view's record (`--enable-engine-view`): what the scheduler did in one
// step and the state of every KV-cache block, as plain data that rides in
// SchedulerStats (SchedulerStats.engineView) up to the front end, where the server
// streams it to GET /engine/events. Compact on purpose: the KV cache is a
// run-length encoding of block states, capped in cells; request lists are capped.
// vLLM has no such record; its names (num_computed_tokens, block_size, prefix
// cache hit, preempted, token budget) are kept in camelCase.

/** States of a KV-cache block (a cell of the grid), in increasing order of interest. */
export const KvBlockState = {
  /** In the free queue and holding nothing reusable (never filled, or evicted). */
  FREE: 0,
  /** In the free queue (ref_cnt 0) but still registered in the prefix cache: a later prompt can hit it, or it is evicted when handed out. */
  CACHED: 1,
  /** Held by one request, computed by it. */
  USED: 2,
  /** Held by one request that found it in the prefix cache (a prefix cache hit: not computed again). */
  PREFIX_HIT: 3,
  /** Held by several requests at once (ref_cnt > 1): one copy of a shared prefix. */
  SHARED: 4,
} as const;
export type KvBlockState = (typeof KvBlockState)[keyof typeof KvBlockState];

/** The names of the states by code, as the page shows them. */
export const KV_BLOCK_STATE_NAMES = ['free', 'cached', 'used', 'prefix_hit', 'shared'] as const;

/** The KV cache as a grid of cells (one block each, or several when the pool is larger than the cap). */
export interface KvGridRecord {
  /** Tokens per block (vLLM's block_size). */
  blockSize: number;
  /** Usable blocks (block 0, the null block, is left out). */
  numBlocks: number;
  /** Blocks per cell: 1 unless numBlocks is above the cell cap; a cell then shows the most interesting state of its blocks. */
  blocksPerCell: number;
  numCells: number;
  /** Run-length encoding over the cells, block 1 first: [state, owner, length] triples; owner indexes `owners`, -1 for none. */
  runs: number[];
  /** Request ids the runs name (the running requests that hold blocks). */
  owners: string[];
  /** Blocks in each state, indexed by KvBlockState. */
  counts: number[];
}

/** One running request as this step left it. */
export interface StepRequestRecord {
  reqId: string;
  /** Tokens scheduled for it this step (0: running but left out, the token budget was spent). */
  numScheduledTokens: number;
  /** Tokens whose KV was computed (or found in the prefix cache) before this step. */
  numComputedTokens: number;
  /** Prompt plus the outputs so far. */
  numTokens: number;
  numPromptTokens: number;
  numOutputTokens: number;
  /** Prompt tokens the prefix cache served at its (last) admission. */
  numCachedTokens: number;
  /** 'prefill': a chunk of the prompt (or of a recompute after preemption); 'decode': the one newest token. */
  phase: 'prefill' | 'decode';
  /** Of numScheduledTokens, draft tokens of speculative decoding to verify (0 without --speculative-config). */
  numSpecTokens: number;
  /** Admitted from the waiting queue this very step. */
  isNew: boolean;
  numBlocks: number;
  numPreemptions: number;
}

export interface WaitingRequestRecord {
  reqId: string;
  /** 'preempted': evicted to make room, it resumes first and recomputes its tokens. */
  status: 'waiting' | 'preempted' | 'waiting_for_fsm';
  numTokens: number;
  numPreemptions: number;
}

/** Ids seen since the previous record, capped (the count is exact). */
export interface IdList {
  ids: string[];
  count: number;
}

export interface EngineViewRecord {
  /** The engine step this record shows (counted from 1 since startup). */
  step: number;
  /** True for the record sent when the engine ran out of requests and stopped stepping (nothing scheduled). */
  idle: boolean;
  /** Steps taken since the previous record (records are sampled, at most a few per second). */
  numSteps: number;
  /** Seconds since the epoch. */
  timestamp: number;
  /** max_num_batched_tokens: the token budget one step hands out. */
  tokenBudget: number;
  maxNumSeqs: number;
  /** Tokens scheduled this step, all requests together. */
  numScheduledTokens: number;
  /** Every running request in scheduling order: scheduled ones first. */
  running: StepRequestRecord[];
  /** The waiting queue in order, capped; numWaitingReqs is exact. */
  waiting: WaitingRequestRecord[];
  numWaitingReqs: number;
  /** Since the previous record (this step included). */
  admitted: IdList;
  preempted: IdList;
  finished: IdList;
  /** Since the previous record: prompt tokens looked up in the prefix cache, and found there. */
  prefixCacheQueries: number;
  prefixCacheHits: number;
  /** Tokens scheduled over the numSteps steps. */
  numScheduledTokensSinceLast: number;
  kv: KvGridRecord;
}
