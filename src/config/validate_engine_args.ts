// EngineArgs checked before anything loads: a flag mistake (--max-num-seqs 0, a
// negative KV cache size, a GPU fraction above 1) gets one sentence naming the flag,
// not a failure deep in the KV-cache sizing minutes later.
import type { EngineArgs } from './engine_args.js';
import { resolveSpeculativeConfig } from './speculative.js';

export class EngineArgsError extends Error {
  override name = 'EngineArgsError';
  constructor(
    message: string,
    readonly field: keyof EngineArgs,
  ) {
    super(message);
  }
}

const FLAG: Partial<Record<keyof EngineArgs, string>> = {
  maxModelLen: '--max-model-len',
  blockSize: '--block-size',
  maxNumSeqs: '--max-num-seqs',
  maxNumBatchedTokens: '--max-num-batched-tokens',
  maxWaitingRequests: '--max-waiting-requests',
  kvCacheMemoryBytes: '--kv-cache-memory-bytes',
  gpuMemoryUtilization: '--gpu-memory-utilization',
  numThreads: '--num-threads',
  seed: '--seed',
  speculativeConfig: '--speculative-config',
  tensorParallelSize: '--tensor-parallel-size',
};

const name = (field: keyof EngineArgs) => (FLAG[field] ? `${FLAG[field]} (${field})` : field);

function positiveInt(args: EngineArgs, field: keyof EngineArgs, what: string): void {
  const v = args[field];
  if (v === undefined || v === null) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new EngineArgsError(`${name(field)} must be a positive integer, got ${JSON.stringify(v)}: it is ${what}.`, field);
  }
}

/** Throws EngineArgsError for the first invalid setting. */
export function validateEngineArgs(args: EngineArgs): void {
  if (typeof args.model !== 'string' || args.model === '') throw new EngineArgsError('model must name a model folder', 'model');
  positiveInt(args, 'maxModelLen', 'the context length in tokens');
  positiveInt(args, 'blockSize', 'the tokens per KV-cache block');
  positiveInt(args, 'maxNumSeqs', 'the most sequences one engine step runs');
  positiveInt(args, 'maxNumBatchedTokens', 'the token budget of one engine step');
  positiveInt(args, 'maxWaitingRequests', 'how many requests may wait before new ones get 503');
  positiveInt(args, 'kvCacheMemoryBytes', 'the bytes given to the KV cache');
  positiveInt(args, 'numThreads', 'the CPU threads of the native kernels');
  positiveInt(args, 'tensorParallelSize', 'the number of ranks (GPUs) the model is sharded over');
  if (args.seed !== undefined && (typeof args.seed !== 'number' || !Number.isInteger(args.seed))) {
    throw new EngineArgsError(`${name('seed')} must be an integer, got ${JSON.stringify(args.seed)}.`, 'seed');
  }
  const g = args.gpuMemoryUtilization;
  if (g !== undefined && !(typeof g === 'number' && g > 0 && g <= 1)) {
    throw new EngineArgsError(`${name('gpuMemoryUtilization')} must be a fraction in (0, 1], got ${JSON.stringify(g)}.`, 'gpuMemoryUtilization');
  }
  try {
    resolveSpeculativeConfig(args.speculativeConfig);
  } catch (e) {
    throw new EngineArgsError(`${name('speculativeConfig')}: ${(e as Error).message}.`, 'speculativeConfig');
  }
}
