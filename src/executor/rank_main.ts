// Entry of a tensor-parallel rank other than 0: a worker thread (CPU ranks, the
// in-process communicator) or a child process (CUDA ranks, one GPU each, NCCL).
// It builds its Worker (its shard of the weights, its KV heads' cache), then runs
// every SchedulerOutput the driver sends, in order, and drops its outputs: rank 0's
// are the engine's (every rank samples the same tokens from the same gathered logits).
import { parentPort, workerData } from 'node:worker_threads';
import { SamplingParams } from '../sampling_params.js';
import { Worker as RankWorker } from '../worker/worker.js';
import { abortInProcessGroup } from '../distributed/in_process.js';
import type { FromRank, RankInit, ToRank } from './rank_messages.js';
import { parallelRank } from './rank_parallel.js';
import { settleGrammarBitmask } from './rank_grammar.js';

interface Channel {
  post(msg: FromRank): void;
  onMessage(fn: (msg: ToRank | RankInit) => void): void;
  exit(code: number): void;
}

/** A child process's last message still being written: it exits once the pipe has it (or the error would be lost). */
let sending: Promise<void> = Promise.resolve();
const channel: Channel = parentPort
  ? { post: (m) => parentPort!.postMessage(m), onMessage: (fn) => parentPort!.on('message', fn), exit: () => parentPort!.close() }
  : {
      post: (m) => {
        sending = new Promise((done) => process.send!(m, () => done()));
      },
      onMessage: (fn) => process.on('message', fn),
      exit: (code) => void sending.then(() => process.exit(code)),
    };

function run(init: RankInit): void {
  const fail = (e: unknown) => {
    const message = e instanceof Error ? e.message : String(e);
    if (init.comm.kind === 'in_process') abortInProcessGroup(init.comm.group, init.rank, message);
    channel.post({ type: 'error', rank: init.rank, message });
    channel.exit(1);
  };
  channel.post({ type: 'loaded', rank: init.rank });
  let worker: RankWorker;
  try {
    worker = RankWorker.create(init.config, init.modelConfig, undefined, parallelRank(init.rank, init.size, init.comm));
  } catch (e) {
    fail(e);
    return;
  }
  channel.post({ type: 'ready', rank: init.rank });
  channel.onMessage((msg) => {
    if (!('type' in msg)) return;
    if (msg.type === 'abort') return;
    if (msg.type === 'shutdown') {
      worker.shutdown();
      channel.exit(0);
      return;
    }
    try {
      // The thread / process boundary dropped the prototypes; re-hydrated here, once.
      for (const r of msg.so.scheduledNewReqs) r.samplingParams = SamplingParams.fromPlain(r.samplingParams);
      worker.runner.execute(settleGrammarBitmask(msg.so));
    } catch (e) {
      fail(e);
    }
  });
}

if (parentPort) {
  run(workerData as RankInit);
} else {
  // A child process: the relay sends the init as its first message.
  process.once('message', (init: RankInit) => run(init));
  // The engine process went away: nothing will drive this rank again.
  process.on('disconnect', () => process.exit(1));
}
