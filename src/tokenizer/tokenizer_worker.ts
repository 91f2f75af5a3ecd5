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

/** The path of the first string longer than `max` code units in a parsed JSON value, or null. */
function longString(root: unknown, max: number): { path: string; length: number } | null {
  const stack: [unknown, string][] = [[root, '']];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      if (v.length > max) return { path, length: v.length };
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], path ? `${path}.${i}` : String(i)]);
    } else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) stack.push([x, path ? `${path}.${k}` : k]);
    }
  }
  return null;
}

function run(task: PoolTask): unknown {
  if (task.op === 'parseJson') {
    const value: unknown = JSON.parse(Buffer.from(task.bytes.buffer, task.bytes.byteOffset, task.bytes.byteLength).toString('utf8'));
    const long = Number.isFinite(task.maxStringChars) ? longString(value, task.maxStringChars) : null;
    // NOTE: refused here, so that the main thread never holds the long string.
    if (long) throw Object.assign(new Error(`${long.length}`), { name: 'StringTooLong', path: long.path });
    return value;
  }
  if (tokenizer === null) throw loadError ?? new Error('tokenizer not loaded');
  return tokenizer.encode(task.text, { addSpecialTokens: task.addSpecialTokens });
}

parentPort!.on('message', (task: PoolTask) => {
  let reply: PoolReply;
  try {
    reply = { id: task.id, ok: true, value: run(task) };
  } catch (e) {
    const err = e as Error;
    reply = { id: task.id, ok: false, name: err.name, message: err.message, path: (err as { path?: string }).path };
  }
  parentPort!.postMessage(reply);
});
