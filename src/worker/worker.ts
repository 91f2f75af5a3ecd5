// Worker: owns one device. Initializes the native library, loads the model,
// sizes and allocates the paged KV cache, and builds the ModelRunner.
import type { EngineArgs } from '../config/engine_args.js';
import { ENGINE_ARGS_DEFAULTS } from '../config/engine_args.js';
import type { ModelConfig } from '../config/types.js';
import { PagedAttentionBackend } from '../attention/backends/paged.js';
import { check, DType, DTYPE_BYTES, isAvailable, loadNative, Tensor, Workspace } from '../native/index.js';
import type { Device, NativeOps } from '../native/index.js';
import type { LayerKVCache } from '../model_executor/forward_context.js';
import { openWeights } from '../model_executor/model_loader/index.js';
import { buildModel } from '../model_executor/models/registry.js';
import type { CausalLM } from '../model_executor/models/interface.js';
import { WeightLoader } from '../model_executor/weight_loader.js';
import type { SchedulerOutput } from '../core/sched/output.js';
import { SamplingParams } from '../sampling_params.js';
import { CudaGraphRunner } from './cuda_graph.js';
import { DeviceSampler } from './device_sampler.js';
import { ModelRunner, type PhaseTimer } from './model_runner.js';
import type { StepSampler } from './step_sampler.js';

/** 'auto' picks cuda when its library is built and a GPU answers. */
export function resolveDevice(arg: EngineArgs['device']): Device {
  if (arg === 'cpu' || arg === 'cuda') return arg;
  if (isAvailable('cuda')) {
    try {
      if (loadNative('cuda').deviceCount() > 0) return 'cuda';
    } catch {
      // no driver: fall through to the CPU
    }
  }
  return 'cpu';
}

/** Activation (and KV cache) dtype: f32 on the CPU; on CUDA the checkpoint's 16-bit type or bf16. */
export function resolveActDtype(device: Device, arg: EngineArgs['dtype'], config: ModelConfig): DType {
  // The CPU kernels compute in f32 and read 16-bit weights as they are.
  if (device === 'cpu') return DType.F32;
  const want = arg && arg !== 'auto' ? arg : config.dtype;
  if (want === 'float16') return DType.F16;
  if (want === 'float32' && arg === 'float32') throw new Error('--dtype float32 is not supported on cuda: use bfloat16 or float16');
  return DType.BF16;
}

export interface WorkerInfo {
  device: Device;
  deviceName: string;
  act: DType;
  numBlocks: number;
  blockSize: number;
  kvCacheBytes: number;
  weightBytes: number;
}

export class Worker {
  private constructor(
    readonly ops: NativeOps,
    readonly info: WorkerInfo,
    readonly model: CausalLM,
    readonly runner: ModelRunner,
    private readonly release: () => void,
  ) {}

  /** timer: where the runner marks its phases (the engine core's StepTimer); none by default. */
  static create(args: EngineArgs, config: ModelConfig, sampler: StepSampler, maxNumSeqs: number, timer?: PhaseTimer): Worker {
    const device = resolveDevice(args.device ?? 'auto');
    const ops = loadNative(device);
    check(ops, ops.init(0, args.numThreads ?? 0), `init ${device}`);
    const act = resolveActDtype(device, args.dtype, config);
    const source = openWeights(config, args.loadFormat ?? 'auto');
    const loader = new WeightLoader(ops, source, device === 'cpu' ? null : act, DType.BF16, args.seed ?? 0);
    let model: CausalLM;
    try {
      model = buildModel(config, loader);
    } catch (e) {
      loader.disposeAll();
      throw e;
    } finally {
      source.close();
    }
    const blockSize = args.blockSize ?? ENGINE_ARGS_DEFAULTS.blockSize;
    const bytesPerBlock = 2 * config.numHiddenLayers * blockSize * config.numKeyValueHeads * config.headDim * DTYPE_BYTES[act];
    const blocksPerSeq = Math.ceil(config.maxModelLen / blockSize);
    const ws = new Workspace(ops, 1 << 22);
    const deviceSampler = device === 'cuda' && !ops.missing.has('sample') ? new DeviceSampler(ops, act, sampler, args.seed ?? 0) : null;
    const runner = new ModelRunner(ops, act, model, [], blockSize, config.vocabSize, ws, new PagedAttentionBackend(), sampler, deviceSampler, timer);
    const allocKv = (numBlocks: number): LayerKVCache[] => {
      const kvShape = [numBlocks, blockSize, config.numKeyValueHeads, config.headDim];
      // Slots are written before they are read; on the GPU, zeros keep padded rows (graphs) finite.
      const make = device === 'cpu' ? Tensor.empty : Tensor.zeros;
      return Array.from({ length: config.numHiddenLayers }, () => ({ key: make(ops, kvShape, act), value: make(ops, kvShape, act) }));
    };
    const freeKv = (caches: LayerKVCache[]) => {
      for (const c of caches) {
        c.key.dispose();
        c.value.dispose();
      }
    };
    if (device !== 'cpu') {
      // NOTE: vLLM sizes the KV cache after a profiling forward pass at the largest
      // batch: whatever memory that pass needed (the workspace peak) stays reserved,
      // and CUDA graphs captured later rely on the workspace never growing again.
      const maxTokens = args.maxNumBatchedTokens ?? ENGINE_ARGS_DEFAULTS.maxNumBatchedTokens;
      const profileBlocks = Math.ceil(maxTokens / blockSize) + maxNumSeqs + 1;
      runner.kvCaches = allocKv(profileBlocks);
      profileRun(runner, maxTokens, maxNumSeqs, blockSize, config.maxModelLen);
      freeKv(runner.kvCaches);
      runner.kvCaches = [];
    }
    // An explicit byte budget (vLLM's kv_cache_memory_bytes) wins over gpuMemoryUtilization.
    const budget = args.kvCacheMemoryBytes ?? (device === 'cpu'
      ? ENGINE_ARGS_DEFAULTS.kvCacheMemoryBytes
      : gpuKvBudget(ops, args.gpuMemoryUtilization ?? ENGINE_ARGS_DEFAULTS.gpuMemoryUtilization));
    // +1: block 0 is the null block.
    const numBlocks = Math.min(Math.floor(budget / bytesPerBlock), maxNumSeqs * blocksPerSeq + 1);
    if (numBlocks < blocksPerSeq + 1) {
      ws.dispose();
      loader.disposeAll();
      const need = (blocksPerSeq + 1) * bytesPerBlock;
      throw new Error(
        `the KV cache budget (${fmtBytes(budget)}) holds ${numBlocks} blocks of ${blockSize} tokens, fewer than one ` +
          `sequence of max_model_len=${config.maxModelLen} needs (${blocksPerSeq + 1} blocks, ${fmtBytes(need)}); ` +
          `raise ${device === 'cpu' ? 'kvCacheMemoryBytes (--kv-cache-memory-bytes)' : 'gpuMemoryUtilization (--gpu-memory-utilization)'} or lower maxModelLen (--max-model-len)`,
      );
    }
    const kvCaches = allocKv(numBlocks);
    runner.kvCaches = kvCaches;
    let graphs: CudaGraphRunner | null = null;
    if (device === 'cuda' && !args.enforceEager && !ops.missing.has('graphBegin')) {
      graphs = new CudaGraphRunner(ops, act, model, runner.attnBackend, blockSize, blocksPerSeq, config.maxModelLen, maxNumSeqs);
      graphs.captureAll(ws, kvCaches);
      runner.graphRunner = graphs;
    }
    const info: WorkerInfo = {
      device, deviceName: ops.deviceName(), act, numBlocks, blockSize,
      kvCacheBytes: numBlocks * bytesPerBlock, weightBytes: loader.loadedBytes,
    };
    const release = () => {
      ops.synchronize();
      graphs?.dispose();
      freeKv(kvCaches);
      ws.dispose();
      loader.disposeAll();
    };
    return new Worker(ops, info, model, runner, release);
  }

  /** Releases weights, KV cache and workspace. */
  shutdown(): void {
    this.release();
  }
}

/** Device memory left for the KV cache: utilization x total, less what is in use now (weights, workspace). */
function gpuKvBudget(ops: NativeOps, utilization: number): number {
  check(ops, ops.synchronize(), 'synchronize');
  const free = new BigUint64Array(1);
  const total = new BigUint64Array(1);
  check(ops, ops.memInfo(free, total), 'mem_info');
  const used = Number(total[0] - free[0]);
  return Math.max(0, Number(total[0]) * utilization - used);
}

/**
 * One forward pass at the largest step the scheduler can make (maxTokens tokens
 * over maxNumSeqs sequences, each sampling a token), so that the workspace grows
 * to its peak before the KV cache takes the rest of the memory.
 */
function profileRun(runner: ModelRunner, maxTokens: number, maxNumSeqs: number, blockSize: number, maxModelLen: number): void {
  const numSeqs = Math.max(1, Math.min(maxNumSeqs, maxTokens));
  const params = SamplingParams.create({ temperature: 0, maxTokens: 1 });
  const lens = Array.from({ length: numSeqs }, (_, i) => Math.floor(maxTokens / numSeqs) + (i < maxTokens % numSeqs ? 1 : 0));
  let nextBlock = 1;
  const so: SchedulerOutput = {
    scheduledNewReqs: lens.map((n, i) => {
      const len = Math.min(n, maxModelLen);
      const blockIds = Array.from({ length: Math.ceil(len / blockSize) }, () => nextBlock++);
      return { reqId: `profile-${i}`, promptTokenIds: new Array(len).fill(0), samplingParams: params, blockIds, numComputedTokens: 0, outputTokenIds: [], eosTokenIds: [] };
    }),
    scheduledCachedReqs: { reqIds: [], newBlockIds: [], numComputedTokens: [] },
    numScheduledTokens: Object.fromEntries(lens.map((n, i) => [`profile-${i}`, Math.min(n, maxModelLen)])),
    totalNumScheduledTokens: lens.reduce((a, n) => a + Math.min(n, maxModelLen), 0),
    finishedReqIds: [],
    preemptedReqIds: [],
  };
  runner.execute(so);
  runner.execute({ ...so, scheduledNewReqs: [], numScheduledTokens: {}, totalNumScheduledTokens: 0, finishedReqIds: lens.map((_, i) => `profile-${i}`) });
}

export function fmtBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  return `${n} B`;
}
