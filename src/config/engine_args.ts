// EngineArgs: everything a user can set when creating an engine (vLLM's names in
// camelCase; the CLI maps --kebab-case flags onto them).

export type DeviceArg = 'auto' | 'cpu' | 'cuda';
export type DtypeArg = 'auto' | 'bfloat16' | 'float16' | 'float32';

export interface EngineArgs {
  /** Path of a HuggingFace model folder. */
  model: string;
  /** Tokenizer folder (default: the model's). */
  tokenizer?: string;
  servedModelName?: string;
  device?: DeviceArg;
  dtype?: DtypeArg;
  /** Engine-wide seed for requests without their own (default 0). */
  seed?: number;
  maxModelLen?: number;
  blockSize?: number;
  maxNumSeqs?: number;
  maxNumBatchedTokens?: number;
  /** Waiting requests beyond this are refused with 503 by the server (default: unlimited). */
  maxWaitingRequests?: number;
  enablePrefixCaching?: boolean;
  /** Bytes for the KV cache (CPU default 1 GiB; on CUDA it replaces gpuMemoryUtilization's sizing). At most what maxNumSeqs x maxModelLen needs. */
  kvCacheMemoryBytes?: number;
  /** CUDA: fraction of device memory the engine may use (default 0.9). */
  gpuMemoryUtilization?: number;
  /** 'auto' (the model's generation_config.json) or 'vllm' (vLLM's own defaults). */
  generationConfig?: 'auto' | 'vllm';
  /** 'auto' reads safetensors; 'dummy' makes random weights of the config's shape. */
  loadFormat?: 'auto' | 'dummy';
  /** CPU threads for the native kernels (default: all cores). */
  numThreads?: number;
  /** Disables CUDA graphs. */
  enforceEager?: boolean;
  /** A Jinja chat template (text) overriding the tokenizer's. */
  chatTemplate?: string;
  /** Most logprobs a request may ask for per position (vLLM's --max-logprobs, default 20; -1: the whole vocabulary). */
  maxLogprobs?: number;
}

export const ENGINE_ARGS_DEFAULTS = {
  device: 'auto',
  dtype: 'auto',
  seed: 0,
  blockSize: 16,
  maxNumSeqs: 256,
  maxNumBatchedTokens: 2048,
  enablePrefixCaching: true,
  kvCacheMemoryBytes: 1 << 30,
  gpuMemoryUtilization: 0.9,
  generationConfig: 'auto',
  loadFormat: 'auto',
  enforceEager: false,
} as const satisfies Partial<EngineArgs>;
