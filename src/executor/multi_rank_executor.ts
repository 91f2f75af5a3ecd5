// Tensor parallelism on one host: N ranks under one engine core and scheduler.
// Rank 0 (the driver) is a Worker in the engine core's own thread; ranks 1..N-1 are
//   CPU:  worker threads of this process, joined by the in-process communicator
//         (a SharedArrayBuffer): the CPU library is one thread pool shared by all;
//   CUDA: child processes, one GPU each, joined by NCCL. Processes, not threads:
//         the CUDA library keeps one device, stream and cuBLASLt handle per
//         process (csrc/cuda/runtime.cu), as vLLM keeps one GPU per worker process.
// Each step the driver posts the SchedulerOutput to the other ranks, then runs it
// itself: the collectives inside the forward pass keep the ranks in step, and the
// driver's output is the engine's. The KV cache's block count is agreed at start-up
// (the smallest rank's), so the scheduler's one block table serves every rank.
import type { ResolvedEngineArgs } from '../config/engine_args.js';
import type { ModelConfig } from '../config/types.js';
import type { Worker as Thread } from 'node:worker_threads';
import { abortInProcessGroup, createInProcessGroup } from '../distributed/in_process.js';
import { loadNccl, ncclUniqueId } from '../distributed/nccl.js';
import { loadNative } from '../native/index.js';
import { initLogger } from '../logger.js';
import type { PhaseTimer } from '../worker/model_runner.js';
import { resolveDevice, Worker, type ParallelRank } from '../worker/worker.js';
import type { Executor } from './abstract.js';
import type { CommSpec, FromRank, RankInit, ToRank } from './rank_messages.js';
import { parallelRank } from './rank_parallel.js';
import { spawnThread } from './spawn.js';

const logger = initLogger('executor');

/** The other ranks, however they run. */
interface RankHosts {
  driver: ParallelRank;
  /**
   * Resolves once the driver may block in its first collective: no failure to start
   * can be left unseen (threads: every rank's modules are loaded, and from then on a
   * failing rank aborts the group itself; processes: the relay is up, and ends the
   * engine process when a rank dies).
   */
  loaded: Promise<void>;
  post(msg: ToRank): void;
  /** The driver failed: the other ranks must not wait on it. */
  abort(message: string): void;
}

export async function createMultiRankExecutor(args: ResolvedEngineArgs, modelConfig: ModelConfig, timer?: PhaseTimer): Promise<Executor> {
  const config = { ...args, device: resolveDevice(args.device) };
  const size = config.tensorParallelSize;
  const hosts = config.device === 'cpu' ? threadRanks(config, modelConfig) : processRanks(config, modelConfig);
  await hosts.loaded;
  let worker: Worker;
  try {
    worker = Worker.create(config, modelConfig, timer, hosts.driver);
  } catch (e) {
    hosts.abort((e as Error).message);
    throw e;
  }
  logger.info(`tensor parallel: ${size} ranks on ${config.device}, ${worker.info.numBlocks} KV blocks each (the smallest rank's)`);
  return {
    info: worker.info,
    runner: {
      execute: (so) => {
        hosts.post({ type: 'execute', so });
        return worker.runner.execute(so);
      },
    },
    shutdown: () => {
      hosts.post({ type: 'shutdown' });
      worker.shutdown();
    },
  };
}

function inits(config: ResolvedEngineArgs, modelConfig: ModelConfig, comm: CommSpec): RankInit[] {
  const size = config.tensorParallelSize;
  return Array.from({ length: size - 1 }, (_, i) => ({ config, modelConfig, rank: i + 1, size, comm }));
}

/** Waits for `count` 'loaded' messages; rejects on the first error. */
function whenLoaded(count: number, on: (fn: (m: FromRank) => void) => void, onError: (fn: (e: Error) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let left = count;
    on((m) => {
      if (m.type === 'loaded' && --left === 0) resolve();
      if (m.type === 'error') reject(new Error(`tensor-parallel rank ${m.rank} failed: ${m.message}`));
    });
    onError(reject);
  });
}

function threadRanks(config: ResolvedEngineArgs, modelConfig: ModelConfig): RankHosts {
  const group = createInProcessGroup(config.tensorParallelSize);
  const comm: CommSpec = { kind: 'in_process', group };
  let closing = false;
  const threads: Thread[] = inits(config, modelConfig, comm).map((init) => {
    const t = spawnThread('rank_main', init);
    t.on('error', (e) => abortInProcessGroup(group, init.rank, e.message));
    t.on('exit', (code) => {
      if (!closing && code !== 0) abortInProcessGroup(group, init.rank, `its thread exited with code ${code}`);
    });
    return t;
  });
  const loaded = whenLoaded(threads.length, (fn) => threads.forEach((t) => t.on('message', fn)), (fn) => threads.forEach((t) => t.on('error', fn)));
  return {
    driver: parallelRank(0, config.tensorParallelSize, comm),
    loaded,
    post: (msg) => {
      if (msg.type === 'shutdown') closing = true;
      for (const t of threads) t.postMessage(msg);
    },
    abort: (message) => {
      closing = true;
      abortInProcessGroup(group, 0, message);
      for (const t of threads) void t.terminate();
    },
  };
}

/** CUDA_VISIBLE_DEVICES of each rank: the r-th device this process sees. */
function rankDevices(size: number): string[] {
  const visible = process.env.CUDA_VISIBLE_DEVICES?.split(',').map((d) => d.trim()).filter((d) => d !== '');
  return Array.from({ length: size }, (_, r) => visible?.[r] ?? String(r));
}

function processRanks(config: ResolvedEngineArgs, modelConfig: ModelConfig): RankHosts {
  const size = config.tensorParallelSize;
  const ops = loadNative('cuda');
  const count = ops.deviceCount();
  if (count < size) {
    throw new Error(`--tensor-parallel-size ${size} needs ${size} GPUs, one per rank; ${count} ${count === 1 ? 'is' : 'are'} visible` +
      (process.env.CUDA_VISIBLE_DEVICES !== undefined ? ` (CUDA_VISIBLE_DEVICES=${process.env.CUDA_VISIBLE_DEVICES})` : ''));
  }
  const ncclPath = loadNccl(ops);
  const comm: CommSpec = { kind: 'nccl', uniqueId: ncclUniqueId(ops) };
  logger.info(`NCCL ${ops.ncclVersion()} from ${ncclPath}`);
  const relay = spawnThread('rank_relay', { inits: inits(config, modelConfig, comm), devices: rankDevices(size) });
  // NOTE: not the ranks' own 'loaded': a child that blocks in ncclCommInitRank right
  // after posting it may not have written it to its pipe yet, and rank 0 would wait.
  const loaded = new Promise<void>((resolve, reject) => {
    relay.on('message', (m: FromRank) => m.type === 'relay_up' && resolve());
    relay.once('error', reject);
  });
  return {
    driver: parallelRank(0, size, comm),
    loaded,
    post: (msg) => relay.postMessage(msg),
    abort: () => relay.postMessage({ type: 'abort' } satisfies ToRank),
  };
}
