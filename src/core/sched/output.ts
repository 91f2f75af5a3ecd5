// Records that cross scheduler -> model runner -> scheduler (vLLM V1's
// SchedulerOutput and ModelRunnerOutput). Plain data: they may be posted
// between threads.
import type { PoolingParams } from '../../pooling_params.js';
import type { SamplingParams } from '../../sampling_params.js';
import type { PositionLogprobs } from '../types.js';
import type { GrammarBitmask } from '../../structured_output/request.js';

/** A request scheduled for the first time (or again after preemption): the runner has no state for it. */
export interface NewRequestData {
  reqId: string;
  promptTokenIds: number[];
  samplingParams: SamplingParams;
  /** Ids of the KV blocks that hold the request's tokens, in order. */
  blockIds: number[];
  /** Tokens already in the KV cache (prefix-cache hit) when scheduled. */
  numComputedTokens: number;
  /** Tokens generated before a preemption (their KV is recomputed with the prompt). */
  outputTokenIds: number[];
  /** EOS ids of the request (the sampler masks them, with stopTokenIds, until minTokens). */
  eosTokenIds: number[];
  /** Embedding requests: pool the prompt's hidden states instead of sampling. */
  poolingParams?: PoolingParams;
}

/** Requests the runner already knows, with what changed since their last step. */
export interface CachedRequestData {
  reqIds: string[];
  /** Blocks appended since the last step, per request. */
  newBlockIds: number[][];
  /** numComputedTokens before this step, per request. */
  numComputedTokens: number[];
}

export interface SchedulerOutput {
  scheduledNewReqs: NewRequestData[];
  scheduledCachedReqs: CachedRequestData;
  /** Tokens to compute this step, per request id (1 for a decode, a chunk for a prefill). */
  numScheduledTokens: Record<string, number>;
  totalNumScheduledTokens: number;
  /** Requests that finished or were aborted since the last step: the runner drops their state. */
  finishedReqIds: string[];
  /** Requests preempted this step: the runner drops their state; they come back as new. */
  preemptedReqIds: string[];
  /**
   * Speculative decoding: per request id with drafts this step, the draft tokens it
   * computes after its last token (numScheduledTokens counts them too); vLLM's
   * scheduled_spec_decode_tokens. Absent or {}: no drafts.
   */
  scheduledSpecDecodeTokens?: Record<string, number[]>;
  /** Structured outputs: the allowed tokens of the constrained requests that sample this step. */
  grammarBitmask?: GrammarBitmask | null;
}

export interface ModelRunnerOutput {
  /** Request ids in the order of sampledTokenIds. */
  reqIds: string[];
  /**
   * Tokens sampled this step per request; [] for a request whose prefill chunk is not
   * its last. With drafts: the accepted drafts, then the recovered or bonus token.
   */
  sampledTokenIds: number[][];
  /** Per request: logprobs of each sampled token, or null when not asked for. */
  logprobs: (PositionLogprobs[] | null)[];
  /** Prompt logprobs computed this step (positions 1.. of the chunk), per request id. */
  promptLogprobs: Record<string, PositionLogprobs[]>;
  /** Speculative decoding: per request (the order of reqIds), the drafts proposed for its next step. */
  specTokenIds?: number[][];
  /** Embedding requests whose prompt was completed this step: their pooled vector. */
  pooledOutputs?: Record<string, number[]>;
}
