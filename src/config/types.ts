// Configuration records shared by every layer. The loader (./model_config.ts)
// fills ModelConfig from a HuggingFace config.json in either key layout.

export type TorchDtype = 'float32' | 'float16' | 'bfloat16';

/** Rotary embedding parameters, normalized from rope_theta/rope_scaling or rope_parameters. */
export interface RopeConfig {
  theta: number;
  /** 'default' | 'llama3' | 'linear' | ... (HF's rope_type) */
  type: string;
  factor?: number;
  lowFreqFactor?: number;
  highFreqFactor?: number;
  originalMaxPositionEmbeddings?: number;
  /** longrope: per-frequency divisors [rotaryDim / 2] below / from original_max_position_embeddings. */
  shortFactor?: number[];
  longFactor?: number[];
  /** longrope: cos/sin multiplier (attention_factor; default from max / original positions). */
  attentionFactor?: number;
  /** Fraction of head_dim that rotates (partial_rotary_factor), default 1. */
  partialRotaryFactor: number;
}

export interface ModelConfig {
  /** Folder the model was loaded from. */
  model: string;
  architectures: string[];
  modelType: string;
  /** config.json, as read. */
  hfConfig: Record<string, unknown>;
  /** Weights' dtype on disk (torch_dtype / dtype). */
  dtype: TorchDtype;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  rope: RopeConfig | null;
  tieWordEmbeddings: boolean;
  /** e.g. 'silu', 'gelu_pytorch_tanh', 'gelu_new' */
  hiddenAct: string;
  attentionBias: boolean;
  slidingWindow: number | null;
  /** The engine's context limit: --max-model-len or max_position_embeddings. */
  maxModelLen: number;
  bosTokenId: number | null;
  /** eos ids from config.json and generation_config.json, merged. */
  eosTokenIds: number[];
  /** generation_config.json, as read ({} when absent). */
  generationConfig: Record<string, unknown>;
}

export interface CacheConfig {
  blockSize: number;
  /** Set after profiling / from the memory budget. */
  numBlocks: number;
  enablePrefixCaching: boolean;
  /** Every layer's attention window is at most this (null: some layer attends to all): the KV cache frees blocks that leave it. */
  slidingWindow?: number | null;
}

export interface SchedulerConfig {
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
  maxModelLen: number;
  enableChunkedPrefill: boolean;
  /** Waiting requests beyond this are refused (server answers 503); Infinity = no limit. */
  maxWaitingRequests: number;
}
