// Records between the engine front end (main thread) and the engine core
// (worker thread): EngineCoreRequest in, EngineCoreOutputs out (vLLM keeps them in
// vllm/v1/engine/__init__.py). A leaf: core/, engine/, metrics/ and outputs.ts
// import it downward; it imports only the request parameter records.
import type { PoolingParams } from '../pooling_params.js';
import type { SamplingParams } from '../sampling_params.js';
import type { EngineViewRecord } from './engine_view.js';

/** Logprobs of one position: entry 0 is the chosen (sampled or prompt) token, then the top-n. */
export interface PositionLogprobs {
  tokenIds: number[];
  logprobs: number[];
  /** Rank of entry 0 among the whole vocabulary (1 = most likely). */
  rank: number;
}

export type FinishReason = 'stop' | 'length' | 'abort' | 'error';

export interface EngineCoreRequest {
  requestId: string;
  promptTokenIds: number[];
  samplingParams: SamplingParams;
  /** Token ids that end generation unless samplingParams.ignoreEos (from the model and generation_config). */
  eosTokenIds: number[];
  /** Seconds since the epoch (Date.now() / 1000). */
  arrivalTime: number;
  priority: number;
  /** Separates prefix-cache entries of different tenants. */
  cacheSalt?: string;
  /** Set for embedding requests: the prompt is pooled instead of generating. */
  poolingParams?: PoolingParams;
}

export interface EngineCoreOutput {
  requestId: string;
  newTokenIds: number[];
  newLogprobs: PositionLogprobs[] | null;
  newPromptLogprobs: PositionLogprobs[] | null;
  finishReason: FinishReason | null;
  /** The stop token id that ended the request (a stop string is set later, by the detokenizer). */
  stopReason: number | string | null;
  numCachedTokens: number;
  /** The pooled vector of an embedding request (it then finishes with no tokens). */
  pooledOutput?: number[];
  /** What happened to the request in the core since its previous output (for the phase metrics). */
  events?: EngineCoreEvent[];
}

/**
 * vLLM's EngineCoreEvent: a request entered the waiting queue, was scheduled
 * (from waiting: first time or after a preemption), or was preempted; the front
 * end turns them into the queue / prefill / decode / inference times.
 */
export interface EngineCoreEvent {
  type: 'queued' | 'scheduled' | 'preempted';
  /** Seconds since the epoch (Date.now() / 1000), the clock of EngineCoreOutputs.timestamp. */
  timestamp: number;
}

/**
 * What the scheduler reports each step (for metrics and logging). Gauges are the
 * current values; prefixCacheQueries, prefixCacheHits and numPreemptions count what
 * happened since the previous step (Prometheus counters add them up).
 */
export interface SchedulerStats {
  numRunningReqs: number;
  numWaitingReqs: number;
  /** Fraction of KV blocks in use, 0..1. */
  kvCacheUsage: number;
  prefixCacheQueries: number;
  prefixCacheHits: number;
  numPreemptions: number;
  /**
   * Waiting requests held back by something other than room (vLLM's "deferred"
   * reason: LoRA budget, KV transfer, a grammar still compiling); the rest wait for
   * capacity. Absent: none.
   */
  numDeferredWaitingReqs?: number;
  /** Speculative decoding this step (vLLM's SpecDecodingStats); absent when nothing was verified. */
  specDecodingStats?: SpecDecodingStats;
  /** With --enable-engine-view, on the steps the view samples: what this step scheduled and the KV cache's blocks. */
  engineView?: EngineViewRecord;
}

/** vLLM's SpecDecodingStats: drafts verified in one step, and how many of their tokens were accepted. */
export interface SpecDecodingStats {
  /** K of the speculative config: the length of numAcceptedTokensPerPos. */
  numSpecTokens: number;
  numDrafts: number;
  numDraftTokens: number;
  numAcceptedTokens: number;
  /** [numSpecTokens]: drafts whose token at position i was accepted. */
  numAcceptedTokensPerPos: number[];
}

export interface EngineCoreOutputs {
  outputs: EngineCoreOutput[];
  schedulerStats: SchedulerStats | null;
  /** Seconds since the epoch when the step finished. */
  timestamp: number;
}
