// The thread behind TokenizerPool: loads the tokenizer once, then encodes texts and
// parses large JSON bodies, so that neither blocks the HTTP event loop.
import { parentPort, workerData } from 'node:worker_threads';
import { Tokenizer } from './tokenizer.js';
import type { PoolReply, PoolTask } from './tokenizer_pool.js';

const { dir } = workerData as { dir: string };
let tokenizer: Tokenizer | null = null;
let loadError: Error | null = null;
try {
  tokenizer = Tokenizer.fromPretrained(dir);
} catch (e) {
  loadError = e as Error;
}

function run(task: PoolTask): unknown {
  if (task.op === 'parseJson') return JSON.parse(Buffer.from(task.bytes).toString('utf8'));
  if (tokenizer === null) throw loadError ?? new Error('tokenizer not loaded');
  return tokenizer.encode(task.text, { addSpecialTokens: task.addSpecialTokens });
}

parentPort!.on('message', (task: PoolTask) => {
  let reply: PoolReply;
  try {
    reply = { id: task.id, ok: true, value: run(task) };
  } catch (e) {
    const err = e as Error;
    reply = { id: task.id, ok: false, name: err.name, message: err.message };
  }
  parentPort!.postMessage(reply);
});
