// What the engine hands to users: vLLM's RequestOutput and CompletionOutput.
import type { FinishReason } from './core/types.js';

/** One candidate token at one position. */
export interface Logprob {
  logprob: number;
  /** 1-based rank in the vocabulary. */
  rank: number;
  decodedToken: string;
}

/** Per position: token id -> its Logprob (the chosen token plus the top-n). */
export type SampleLogprobs = Record<number, Logprob>[];
/** Per prompt position (the first is null, as in vLLM). */
export type PromptLogprobs = (Record<number, Logprob> | null)[];

export interface RequestMetrics {
  arrivalTime: number;
  firstScheduledTime: number | null;
  firstTokenTime: number | null;
  lastTokenTime: number | null;
  finishedTime: number | null;
}

export interface CompletionOutput {
  index: number;
  text: string;
  tokenIds: number[];
  cumulativeLogprob: number | null;
  logprobs: SampleLogprobs | null;
  finishReason: FinishReason | null;
  /** The stop string or stop token id that ended generation; null for EOS or length. */
  stopReason: number | string | null;
}

export interface RequestOutput {
  requestId: string;
  prompt: string | null;
  promptTokenIds: number[];
  promptLogprobs: PromptLogprobs | null;
  outputs: CompletionOutput[];
  finished: boolean;
  numCachedTokens: number;
  metrics?: RequestMetrics;
  /** Embedding requests: the pooled vector (outputs is then empty). */
  embedding?: number[];
}

/** What llm.embed() returns per prompt (vLLM's EmbeddingRequestOutput). */
export interface EmbeddingRequestOutput {
  requestId: string;
  promptTokenIds: number[];
  outputs: { embedding: number[] };
  finished: boolean;
}
