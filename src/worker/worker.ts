// Worker: owns one device. Initializes the native library, loads the model,
// sizes and allocates the paged KV cache, captures CUDA graphs, and builds the
// ModelRunner (vLLM's Worker steps, in that order).
import { CPU_KV_CACHE_MEMORY_BYTES, type EngineArgs, type ResolvedEngineArgs } from '../config/engine_args.js';
import type { ModelConfig } from '../config/types.js';
import type { AttentionBackend } from '../attention/backends/backend.js';
import { PagedAttentionBackend } from '../attention/backends/paged.js';
import { check, DType, DTYPE_BYTES, loadNative, Tensor, Workspace } from '../native/index.js';
import type { Device, NativeOps } from '../native/index.js';
import type { LayerKVCache } from '../model_executor/forward_context.js';
import { openWeights } from '../model_executor/model_loader/index.js';
import { buildModel } from '../model_executor/models/registry.js';
import type { CausalLM } from '../model_executor/models/interface.js';
import { WeightLoader } from '../model_executor/weight_loader.js';
import type { SchedulerOutput } from '../core/sched/output.js';
import { commonSlidingWindow } from '../core/kv_cache/sliding_window.js';
import { SamplingParams } from '../sampling_params.js';
import { CudaGraphRunner } from './cuda_graph.js';
import { ModelRunner, type ModelRunnerOptions, type PhaseTimer } from './model_runner.js';
import { createSampler, type StepSampler } from './sampler.js';
import { chooseDevice } from './device_choice.js';
import { NgramProposer } from './spec_decode/ngram_proposer.js';
import { initLogger } from '../logger.js';
import { type Communicator, NO_TENSOR_PARALLEL, type TensorParallel } from '../distributed/communicator.js';
import { localHeads } from '../model_executor/layers/parallel_linear.js';

const logger = initLogger('worker');

/** 'auto' picks cuda when its library is built and a GPU answers; says which, and why, in one line. */
export function resolveDevice(arg: EngineArgs['device']): Device {
  const { device, reason } = chooseDevice(arg);
  logger.info(`Using device ${device}: ${reason}`);
  return device;
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
  /** The window every layer's attention stays within (null when a layer attends to the whole sequence). */
  slidingWindow: number | null;
}

/**
 * This worker's rank in a tensor-parallel group (src/executor/ starts the ranks):
 * connect joins the group's communicator once the device is up (NCCL needs it).
 */
export interface ParallelRank {
  rank: number;
  size: number;
  connect(ops: NativeOps): Communicator;
}

/** What the build steps share: the resolved configs, and how to release what each step allocated. */
interface BuildContext {
  config: ResolvedEngineArgs;
  modelConfig: ModelConfig;
  parallel: ParallelRank | null;
  /** Run in reverse order by shutdown (or when a step fails). */
  releases: (() => void)[];
}

/** initDevice: the device's library, the activation dtype, the step workspace, the attention backend and the sampler. */
interface DeviceState {
  device: Device;
  ops: NativeOps;
  act: DType;
  ws: Workspace;
  attnBackend: AttentionBackend;
  /** The engine's sampler (the worker builds it: ./sampler.ts decides host or device). */
  sampler: StepSampler;
  /** This rank's place in its tensor-parallel group (size 1: none). */
  tp: TensorParallel;
}

/** The paged KV cache of every layer. */
interface KvCache {
  caches: LayerKVCache[];
  numBlocks: number;
  bytes: number;
}

/**
 * Owns one device. Worker.create builds it in vLLM's steps: initDevice ->
 * loadModel -> determineAvailableMemory -> initializeKvCache -> captureModel,
 * then the ModelRunner over what they made.
 */
export class Worker {
  private constructor(
    readonly ops: NativeOps,
    readonly info: WorkerInfo,
    readonly model: CausalLM,
    readonly runner: ModelRunner,
    private readonly releases: (() => void)[],
  ) {}

  /**
   * timer: where the runner marks its phases (the engine core's StepTimer); none by default.
   * parallel: this worker's tensor-parallel rank (null: the whole model on one device).
   */
  static create(config: ResolvedEngineArgs, modelConfig: ModelConfig, timer?: PhaseTimer, parallel: ParallelRank | null = null): Worker {
    const ctx: BuildContext = { config, modelConfig, parallel, releases: [] };
    let d: DeviceState | null = null;
    try {
      d = initDevice(ctx);
      const { model, weightBytes } = loadModel(ctx, d);
      const kv = initializeKvCache(ctx, d, determineAvailableMemory(ctx, d, model));
      const graphRunner = captureModel(ctx, d, model, kv);
      const spec = config.speculativeConfig;
      const proposer = spec ? new NgramProposer(spec, modelConfig.maxModelLen) : null;
      const runner = new ModelRunner({ ...runnerParts(ctx, d, model, kv.caches), graphRunner, timer, proposer });
      const info: WorkerInfo = {
        device: d.device, deviceName: d.ops.deviceName(), act: d.act, numBlocks: kv.numBlocks,
        blockSize: config.blockSize, kvCacheBytes: kv.bytes, weightBytes,
        slidingWindow: commonSlidingWindow(model.attentionWindows?.() ?? []),
      };
      return new Worker(d.ops, info, model, runner, ctx.releases);
    } catch (e) {
      release(d?.ops ?? null, ctx.releases);
      throw e;
    }
  }

  /** Releases the CUDA graphs, KV cache, weights and workspace. */
  shutdown(): void {
    release(this.ops, this.releases);
  }
}

function release(ops: NativeOps | null, releases: (() => void)[]): void {
  if (ops && releases.length > 0) ops.synchronize();
  while (releases.length > 0) releases.pop()!();
}

function initDevice({ config, modelConfig, parallel, releases }: BuildContext): DeviceState {
  const device = resolveDevice(config.device);
  const ops = loadNative(device);
  check(ops, ops.init(0, config.numThreads), `init ${device}`);
  const act = resolveActDtype(device, config.dtype, modelConfig);
  const ws = new Workspace(ops, 1 << 22);
  releases.push(() => ws.dispose());
  let tp = NO_TENSOR_PARALLEL;
  if (parallel) {
    const comm = parallel.connect(ops);
    releases.push(() => comm.close());
    tp = { rank: parallel.rank, size: parallel.size, comm };
  }
  // NOTE: every rank seeds its sampler alike: with the same gathered logits all ranks draw the same tokens.
  return { device, ops, act, ws, attnBackend: new PagedAttentionBackend(), sampler: createSampler(ops, act, config.seed), tp };
}

/** Builds the model and loads its weights (on CUDA converted to the activation dtype). */
function loadModel({ config, modelConfig, releases }: BuildContext, d: DeviceState): { model: CausalLM; weightBytes: number } {
  const source = openWeights(modelConfig, config.loadFormat);
  const loader = new WeightLoader(d.ops, source, d.device === 'cpu' ? null : d.act, DType.BF16, config.seed, d.tp);
  releases.push(() => loader.disposeAll());
  try {
    return { model: buildModel(modelConfig, loader), weightBytes: loader.loadedBytes };
  } finally {
    source.close();
  }
}

/**
 * Bytes the KV cache may take: an explicit kvCacheMemoryBytes (vLLM's
 * kv_cache_memory_bytes) wins over the CPU's default budget and over CUDA's
 * gpuMemoryUtilization x total, less what is in use after a profiling run.
 */
function determineAvailableMemory(ctx: BuildContext, d: DeviceState, model: CausalLM): number {
  const { config, modelConfig } = ctx;
  if (d.device !== 'cpu') {
    // NOTE: vLLM sizes the KV cache after a profiling forward pass at the largest
    // batch: whatever memory that pass needed (the workspace peak) stays reserved,
    // and CUDA graphs captured later rely on the workspace never growing again.
    const maxTokens = config.maxNumBatchedTokens;
    const kv = allocKv(ctx, d, Math.ceil(maxTokens / config.blockSize) + config.maxNumSeqs + 1);
    try {
      const numSpec = config.speculativeConfig?.numSpeculativeTokens ?? 0;
      profileRun(new ModelRunner(runnerParts(ctx, d, model, kv.caches)), maxTokens, config.maxNumSeqs, config.blockSize, modelConfig.maxModelLen, numSpec);
    } finally {
      freeKv(kv.caches);
    }
  }
  if (config.kvCacheMemoryBytes !== null) return config.kvCacheMemoryBytes;
  return d.device === 'cpu' ? CPU_KV_CACHE_MEMORY_BYTES : gpuKvBudget(d.ops, config.gpuMemoryUtilization);
}

/** As many blocks as the budget holds, at most what maxNumSeqs x maxModelLen needs; at least one sequence's. */
function initializeKvCache(ctx: BuildContext, d: DeviceState, budget: number): KvCache {
  const { config, modelConfig } = ctx;
  const bytesPerBlock = kvBytesPerBlock(ctx, d);
  const blocksPerSeq = Math.ceil(modelConfig.maxModelLen / config.blockSize);
  // +1: block 0 is the null block.
  let numBlocks = Math.min(Math.floor(budget / bytesPerBlock), config.maxNumSeqs * blocksPerSeq + 1);
  // Tensor parallelism: one block table for all ranks, so every rank takes the smallest rank's count.
  if (d.tp.comm) numBlocks = Math.min(...d.tp.comm.allGatherNumbers(numBlocks));
  if (numBlocks < blocksPerSeq + 1) {
    const need = (blocksPerSeq + 1) * bytesPerBlock;
    throw new Error(
      `the KV cache budget (${fmtBytes(budget)}) holds ${numBlocks} blocks of ${config.blockSize} tokens, fewer than one ` +
        `sequence of max_model_len=${modelConfig.maxModelLen} needs (${blocksPerSeq + 1} blocks, ${fmtBytes(need)}); ` +
        `raise ${d.device === 'cpu' ? 'kvCacheMemoryBytes (--kv-cache-memory-bytes)' : 'gpuMemoryUtilization (--gpu-memory-utilization)'} or lower maxModelLen (--max-model-len)`,
    );
  }
  const kv = allocKv(ctx, d, numBlocks);
  ctx.releases.push(() => freeKv(kv.caches));
  return kv;
}

/**
 * Graphs of decode steps (CUDA's, or the CPU library's recorded ops) unless enforceEager; null: every step runs eagerly.
 * NOTE: not on the CPU with tensor parallelism: the in-process communicator reduces in
 * JavaScript over host views (src/distributed/in_process.ts), which a recorded graph cannot hold.
 */
function captureModel(ctx: BuildContext, d: DeviceState, model: CausalLM, kv: KvCache): CudaGraphRunner | null {
  const { config, modelConfig } = ctx;
  if (config.enforceEager || d.ops.missing.has('graphBegin') || (d.device === 'cpu' && d.tp.size > 1)) return null;
  const blocksPerSeq = Math.ceil(modelConfig.maxModelLen / config.blockSize);
  const graphs = new CudaGraphRunner(d.ops, d.act, model, d.attnBackend, config.blockSize, blocksPerSeq, modelConfig.maxModelLen, config.maxNumSeqs);
  ctx.releases.push(() => graphs.dispose());
  graphs.captureAll(d.ws, kv.caches);
  return graphs;
}

/** KV heads this rank caches: all at size 1, else its shard (or its one replicated head). */
function rankKvHeads(m: ModelConfig, tp: TensorParallel): number {
  return localHeads(m.numAttentionHeads, m.numKeyValueHeads, tp).kvHeads;
}

/** Keys and values of one block over every layer (this rank's KV heads). */
function kvBytesPerBlock({ config, modelConfig: m }: BuildContext, d: DeviceState): number {
  return 2 * m.numHiddenLayers * config.blockSize * rankKvHeads(m, d.tp) * m.headDim * DTYPE_BYTES[d.act];
}

function allocKv(ctx: BuildContext, d: DeviceState, numBlocks: number): KvCache {
  const m = ctx.modelConfig;
  const kvShape = [numBlocks, ctx.config.blockSize, rankKvHeads(m, d.tp), m.headDim];
  // Slots are written before they are read; zeros keep padded rows (graphs) finite: on
  // the GPU the whole cache, on the CPU the null block (block 0) the padding reads.
  const make = d.device === 'cpu' ? Tensor.empty : Tensor.zeros;
  const caches = Array.from({ length: m.numHiddenLayers }, () => ({ key: make(d.ops, kvShape, d.act), value: make(d.ops, kvShape, d.act) }));
  if (d.device === 'cpu') {
    const blockBytes = ctx.config.blockSize * rankKvHeads(m, d.tp) * m.headDim * DTYPE_BYTES[d.act];
    for (const c of caches) for (const t of [c.key, c.value]) check(d.ops, d.ops.memset(t.addr, 0, blockBytes), 'memset');
  }
  return { caches, numBlocks, bytes: numBlocks * kvBytesPerBlock(ctx, d) };
}

function freeKv(caches: LayerKVCache[]): void {
  for (const c of caches) {
    c.key.dispose();
    c.value.dispose();
  }
}

/** A runner over the worker's parts. */
function runnerParts(ctx: BuildContext, d: DeviceState, model: CausalLM, kvCaches: LayerKVCache[]): ModelRunnerOptions {
  const { ops, act, ws, attnBackend, sampler } = d;
  return { ops, act, model, kvCaches, blockSize: ctx.config.blockSize, vocabSize: ctx.modelConfig.vocabSize, ws, attnBackend, sampler };
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
 * over maxNumSeqs sequences, each sampling a token; with speculative decoding the
 * last numSpec tokens of each are drafts, so each samples up to 1 + numSpec rows),
 * so that the workspace grows to its peak before the KV cache takes the rest of the memory.
 */
function profileRun(runner: ModelRunner, maxTokens: number, maxNumSeqs: number, blockSize: number, maxModelLen: number, numSpec: number): void {
  const numSeqs = Math.max(1, Math.min(maxNumSeqs, maxTokens));
  const params = SamplingParams.create({ temperature: 0, maxTokens: 1 });
  const lens = Array.from({ length: numSeqs }, (_, i) => Math.floor(maxTokens / numSeqs) + (i < maxTokens % numSeqs ? 1 : 0));
  let nextBlock = 1;
  const numDrafts = (len: number) => Math.min(numSpec, len - 1);
  const so: SchedulerOutput = {
    scheduledNewReqs: lens.map((n, i) => {
      const len = Math.min(n, maxModelLen);
      const blockIds = Array.from({ length: Math.ceil(len / blockSize) }, () => nextBlock++);
      const promptTokenIds = new Array(len - numDrafts(len)).fill(0);
      return { reqId: `profile-${i}`, promptTokenIds, samplingParams: params, blockIds, numComputedTokens: 0, outputTokenIds: [], eosTokenIds: [] };
    }),
    scheduledSpecDecodeTokens: Object.fromEntries(lens.map((n, i) => [`profile-${i}`, new Array(numDrafts(Math.min(n, maxModelLen))).fill(0)])),
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
