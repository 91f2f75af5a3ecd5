// Entry of the relay thread of CUDA tensor parallelism: it starts ranks 1..N-1 as
// child processes (one GPU each: CUDA_VISIBLE_DEVICES names it; NCCL_NVLS_ENABLE=0)
// and forwards the driver's messages to them. The driver (rank 0) blocks inside
// its steps (its collectives wait for the other ranks), so it cannot write to a
// pipe itself: a postMessage to this thread is delivered at once, and this thread's
// own event loop does the writing. A rank that dies leaves the others waiting in
// NCCL for ever, so the relay then ends the whole engine process, saying why.
import { parentPort, workerData } from 'node:worker_threads';
import type { FromRank, RankInit, ToRank } from './rank_messages.js';
import { settleGrammarBitmask } from './rank_grammar.js';
import { spawnProcess } from './spawn.js';

const { inits, devices } = workerData as { inits: RankInit[]; devices: string[] };
const port = parentPort!;
let closing = false;
let alive = inits.length;

function die(rank: number, why: string): never {
  process.stderr.write(`vllm-ts: tensor-parallel rank ${rank} ${why}; the other ranks would wait on it in NCCL for ever, so the engine process ends\n`);
  for (const c of children) c.kill('SIGKILL');
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
}

const children = inits.map((init) => {
  const env = { ...process.env, CUDA_VISIBLE_DEVICES: devices[init.rank], NCCL_NVLS_ENABLE: '0' };
  const child = spawnProcess('rank_main', env);
  child.send(init);
  child.on('message', (m: FromRank) => {
    port.postMessage(m);
    if (m.type === 'error') die(m.rank, `failed: ${m.message}`);
  });
  child.on('exit', (code, signal) => {
    if (!closing) die(init.rank, `exited (${signal ?? `code ${code}`})`);
    if (--alive === 0) port.close();
  });
  return child;
});

// Posted to the driver at once (a thread's postMessage is not held up by a blocked
// receiver, unlike a child's pipe write): from here on a rank that dies ends the process.
port.postMessage({ type: 'relay_up' } satisfies FromRank);

port.on('message', (m: ToRank) => {
  if (m.type === 'abort') {
    closing = true;
    for (const c of children) c.kill('SIGKILL');
    return;
  }
  if (m.type === 'shutdown') closing = true;
  // A process gets the bitmask's bytes at send time: they must be filled by then.
  if (m.type === 'execute') settleGrammarBitmask(m.so);
  for (const c of children) c.send(m);
});
