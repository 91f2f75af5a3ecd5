// The labels of vllm:cache_config_info: the cache configuration as vLLM's
// CacheConfig.metrics_info() gives it (every value as Python's str() would print it).
import { ENGINE_ARGS_DEFAULTS, type EngineArgs } from '../config/engine_args.js';
import type { CacheConfig } from '../config/types.js';

const py = (v: boolean | number | string | null | undefined): string =>
  v === null || v === undefined ? 'None' : typeof v === 'boolean' ? (v ? 'True' : 'False') : String(v);

export function cacheConfigInfo(cache: CacheConfig, args: EngineArgs): Record<string, string> {
  return {
    block_size: py(cache.blockSize),
    // NOTE: the KV cache holds the model's dtype, which is vLLM's 'auto'.
    cache_dtype: 'auto',
    enable_prefix_caching: py(cache.enablePrefixCaching),
    gpu_memory_utilization: py(args.gpuMemoryUtilization ?? ENGINE_ARGS_DEFAULTS.gpuMemoryUtilization),
    kv_cache_memory_bytes: py(args.kvCacheMemoryBytes),
    // NOTE: vLLM names the device's blocks num_gpu_blocks on every device (CPU included).
    num_gpu_blocks: py(cache.numBlocks),
    num_cpu_blocks: 'None',
    prefix_caching_hash_algo: 'sha256',
    sliding_window: py(cache.slidingWindow),
  };
}
