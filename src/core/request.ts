// The engine core's view of one request (vLLM's v1/request.py): its tokens,
// how many of them have KV in the cache, its status and why it finished.
import type { PoolingParams } from '../pooling_params.js';
import type { EngineCoreEvent, EngineCoreRequest, FinishReason, PositionLogprobs } from './types.js';
import type { SamplingParams } from '../sampling_params.js';
import type { BlockHash, RequestBlockHasher } from './kv_cache/block_hash.js';
import type { StructuredOutputRequest } from '../structured_output/request.js';

export const RequestStatus = {
  WAITING: 'WAITING',
  /** Waiting for its structured-output grammar to compile (not schedulable until then). */
  WAITING_FOR_FSM: 'WAITING_FOR_FSM',
  RUNNING: 'RUNNING',
  PREEMPTED: 'PREEMPTED',
  // Everything after this line is finished.
  FINISHED_STOPPED: 'FINISHED_STOPPED',
  FINISHED_LENGTH_CAPPED: 'FINISHED_LENGTH_CAPPED',
  FINISHED_ABORTED: 'FINISHED_ABORTED',
  /** Refused by the scheduler (prompt too long for maxModelLen or for the whole KV cache). */
  FINISHED_IGNORED: 'FINISHED_IGNORED',
} as const;
export type RequestStatus = (typeof RequestStatus)[keyof typeof RequestStatus];

const FINISHED_REASONS: Partial<Record<RequestStatus, FinishReason>> = {
  FINISHED_STOPPED: 'stop',
  FINISHED_LENGTH_CAPPED: 'length',
  FINISHED_ABORTED: 'abort',
  FINISHED_IGNORED: 'length',
};

export function isFinishedStatus(status: RequestStatus): boolean {
  return FINISHED_REASONS[status] !== undefined;
}

export class Request {
  readonly requestId: string;
  readonly promptTokenIds: readonly number[];
  readonly samplingParams: SamplingParams;
  readonly eosTokenIds: readonly number[];
  readonly arrivalTime: number;
  readonly priority: number;
  readonly cacheSalt: string | null;

  status: RequestStatus = RequestStatus.WAITING;
  readonly outputTokenIds: number[] = [];
  /** Prompt then outputs. */
  readonly allTokenIds: number[];
  readonly numPromptTokens: number;
  /** Set for embedding requests (pooled, never sampled). */
  readonly poolingParams: PoolingParams | null;
  /** Tokens whose KV is in the cache or is being computed in the step just scheduled. */
  numComputedTokens = 0;
  /** Prompt tokens served by the prefix cache at the first schedule; -1 until then. */
  numCachedTokens = -1;
  /** samplingParams.maxTokens, or Infinity (then maxModelLen ends the request). */
  readonly maxTokens: number;
  /** The stop token id that ended the request (null for EOS or length). */
  stopReason: number | string | null = null;
  /** Hashes of the full blocks of allTokenIds, kept up to date as tokens arrive (empty without a hasher). */
  readonly blockHashes: BlockHash[] = [];
  numPreemptions = 0;
  /** Events not yet sent with an output (EngineCoreOutput.events). */
  private events: EngineCoreEvent[] = [];
  /**
   * Prompt logprobs of the prefill chunks computed so far; the scheduler hands
   * them out together with the first sampled token (the engine core never
   * returns partial prefills).
   */
  pendingPromptLogprobs: PositionLogprobs[] | null = null;
  /**
   * Draft tokens proposed after the request's last step (speculative decoding): the
   * next schedule() computes them after its last token, and the runner verifies them.
   * Not part of allTokenIds; cleared on preemption (core/sched/spec_decode.ts).
   */
  specTokenIds: number[] = [];
  /** Requests with samplingParams.structuredOutputs: the grammar state (set by the scheduler). */
  structuredOutputRequest: StructuredOutputRequest | null = null;

  /** Set where the request is built (EngineCore.addRequest passes the prefix cache's): hashes each full block as it fills. */
  private readonly blockHasher: RequestBlockHasher | null;

  constructor(init: {
    requestId: string;
    promptTokenIds: readonly number[];
    samplingParams: SamplingParams;
    eosTokenIds?: readonly number[];
    arrivalTime?: number;
    priority?: number;
    cacheSalt?: string | null;
    blockHasher?: RequestBlockHasher | null;
    poolingParams?: PoolingParams | null;
  }) {
    this.requestId = init.requestId;
    this.promptTokenIds = init.promptTokenIds.slice();
    this.samplingParams = init.samplingParams;
    this.eosTokenIds = init.eosTokenIds?.slice() ?? [];
    this.arrivalTime = init.arrivalTime ?? Date.now() / 1000;
    this.priority = init.priority ?? 0;
    this.cacheSalt = init.cacheSalt ?? null;
    this.allTokenIds = this.promptTokenIds.slice();
    this.numPromptTokens = this.promptTokenIds.length;
    this.maxTokens = init.samplingParams.maxTokens ?? Infinity;
    this.poolingParams = init.poolingParams ?? null;
    this.blockHasher = init.blockHasher ?? null;
    if (this.blockHasher !== null) this.blockHashes.push(...this.blockHasher(this));
  }

  /**
   * Builds the core's request from what the front end sent. Its samplingParams is a
   * SamplingParams already: the core's thread entry re-hydrates it once on arrival.
   */
  static fromEngineCoreRequest(req: EngineCoreRequest, blockHasher: RequestBlockHasher | null = null): Request {
    return new Request({
      requestId: req.requestId,
      promptTokenIds: req.promptTokenIds,
      samplingParams: req.samplingParams,
      eosTokenIds: req.eosTokenIds,
      arrivalTime: req.arrivalTime,
      priority: req.priority,
      cacheSalt: req.cacheSalt ?? null,
      blockHasher,
      poolingParams: req.poolingParams ?? null,
    });
  }

  get numTokens(): number {
    return this.allTokenIds.length;
  }

  /** numTokens plus the draft tokens it carries (vLLM's num_tokens_with_spec). */
  get numTokensWithSpec(): number {
    return this.allTokenIds.length + this.specTokenIds.length;
  }

  get numOutputTokens(): number {
    return this.outputTokenIds.length;
  }

  /**
   * Requests that need every prompt position computed — prompt logprobs, mean-pooled
   * embeddings — do not read the prefix cache (vLLM's skip_reading_prefix_cache).
   */
  get skipReadingPrefixCache(): boolean {
    const promptLogprobs = this.samplingParams.promptLogprobs !== null && this.samplingParams.promptLogprobs !== undefined;
    return promptLogprobs || this.poolingParams?.pooling === 'mean';
  }

  appendOutputTokenIds(tokenIds: number | readonly number[]): void {
    if (typeof tokenIds === 'number') {
      this.outputTokenIds.push(tokenIds);
      this.allTokenIds.push(tokenIds);
    } else {
      this.outputTokenIds.push(...tokenIds);
      this.allTokenIds.push(...tokenIds);
    }
    if (this.blockHasher !== null) this.blockHashes.push(...this.blockHasher(this));
  }

  get isFinished(): boolean {
    return isFinishedStatus(this.status);
  }

  /** 'stop' | 'length' | 'abort' once finished, null before. */
  recordEvent(type: EngineCoreEvent['type'], timestamp = Date.now() / 1000): void {
    this.events.push({ type, timestamp });
  }

  /** The events since the last call (sent with the request's next output). */
  takeEvents(): EngineCoreEvent[] | undefined {
    if (this.events.length === 0) return undefined;
    const out = this.events;
    this.events = [];
    return out;
  }

  getFinishedReason(): FinishReason | null {
    return FINISHED_REASONS[this.status] ?? null;
  }
}
