// EngineArgs: everything a user can set when creating an engine (vLLM's names in
// camelCase; the CLI maps --kebab-case flags onto them).
import { resolveSpeculativeConfig, type SpeculativeConfig, type SpeculativeConfigInput } from './speculative.js';

export type DeviceArg = 'auto' | 'cpu' | 'cuda';
export type DtypeArg = 'auto' | 'bfloat16' | 'float16' | 'float32';

export interface EngineArgs {
  /** A HuggingFace model folder, or a Hub id (org/name) downloaded into the Hub cache; a folder that exists wins. */
  model: string;
  /** Tokenizer folder or Hub id (default: the model's). */
  tokenizer?: string;
  /** Hub branch, tag or commit of the model (default 'main'). */
  revision?: string;
  /** Hub branch, tag or commit of --tokenizer (default 'main'). */
  tokenizerRevision?: string;
  /** Cache folder for Hub downloads instead of huggingface_hub's (HF_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface/hub). */
  downloadDir?: string;
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
  /**
   * vLLM's --tensor-parallel-size: ranks the model is sharded over (heads, MLP width,
   * experts' width, vocabulary), one GPU each on CUDA (NCCL), threads of this process
   * on the CPU (the in-process communicator). Default 1.
   */
  tensorParallelSize?: number;
  /** Runs every step eagerly: no graphs of decode steps (CUDA graphs, or the CPU library's recorded ones). */
  enforceEager?: boolean;
  /** A Jinja chat template (text) overriding the tokenizer's. */
  chatTemplate?: string;
  /** Most logprobs a request may ask for per position (vLLM's --max-logprobs, default 20; -1: the whole vocabulary). */
  maxLogprobs?: number;
  /** vLLM's --reasoning-parser (qwen3, deepseek_r1): grammars start after the reasoning ends. */
  reasoningParser?: string;
  /** vLLM's --structured-outputs-config: defaults for requests that do not set them. */
  structuredOutputsConfig?: { disableAnyWhitespace?: boolean };
  /** vLLM's --speculative-config / speculative_config: n-gram speculative decoding (./speculative.ts). */
  speculativeConfig?: SpeculativeConfigInput | null;
  /** The engine core reports sampled steps and the KV cache's blocks (SchedulerStats.engineView) for GET /engine/events. Default false. */
  enableEngineView?: boolean;
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
  tensorParallelSize: 1,
} as const satisfies Partial<EngineArgs>;

/** The EngineArgs that resolveEngineArgs gives a value whatever the user set. */
type Defaulted =
  | 'device' | 'dtype' | 'seed' | 'blockSize' | 'maxNumSeqs' | 'maxNumBatchedTokens' | 'maxWaitingRequests'
  | 'enablePrefixCaching' | 'gpuMemoryUtilization' | 'generationConfig' | 'loadFormat' | 'numThreads' | 'enforceEager'
  | 'tensorParallelSize';

/**
 * EngineArgs with every engine-core default applied: the one record the engine
 * core, the scheduler config and the worker read (resolveEngineArgs runs once, in
 * EngineCore.create). maxWaitingRequests Infinity: no limit; numThreads 0: all
 * cores; kvCacheMemoryBytes null: CPU_KV_CACHE_MEMORY_BYTES on the CPU,
 * gpuMemoryUtilization on CUDA (the device decides). Other fields pass through.
 */
export type ResolvedEngineArgs = Readonly<
  Omit<EngineArgs, Defaulted | 'kvCacheMemoryBytes' | 'speculativeConfig'> & Required<Pick<EngineArgs, Defaulted>> & {
    kvCacheMemoryBytes: number | null;
    /** null: no speculative decoding. */
    speculativeConfig: SpeculativeConfig | null;
  }
>;

/** The CPU's KV cache budget when kvCacheMemoryBytes is not set (the device decides: see ResolvedEngineArgs). */
export const CPU_KV_CACHE_MEMORY_BYTES = ENGINE_ARGS_DEFAULTS.kvCacheMemoryBytes;

export function resolveEngineArgs(args: EngineArgs): ResolvedEngineArgs {
  const d = ENGINE_ARGS_DEFAULTS;
  return {
    ...args,
    device: args.device ?? d.device,
    dtype: args.dtype ?? d.dtype,
    seed: args.seed ?? d.seed,
    blockSize: args.blockSize ?? d.blockSize,
    maxNumSeqs: args.maxNumSeqs ?? d.maxNumSeqs,
    maxNumBatchedTokens: args.maxNumBatchedTokens ?? d.maxNumBatchedTokens,
    maxWaitingRequests: args.maxWaitingRequests ?? Infinity,
    enablePrefixCaching: args.enablePrefixCaching ?? d.enablePrefixCaching,
    kvCacheMemoryBytes: args.kvCacheMemoryBytes ?? null,
    gpuMemoryUtilization: args.gpuMemoryUtilization ?? d.gpuMemoryUtilization,
    generationConfig: args.generationConfig ?? d.generationConfig,
    loadFormat: args.loadFormat ?? d.loadFormat,
    numThreads: args.numThreads ?? 0,
    enforceEager: args.enforceEager ?? d.enforceEager,
    speculativeConfig: resolveSpeculativeConfig(args.speculativeConfig),
    tensorParallelSize: args.tensorParallelSize ?? d.tensorParallelSize,
  };
}
