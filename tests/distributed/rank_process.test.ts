// The process side of tensor parallelism, on the CPU (the CUDA ranks' path without
// a GPU): the relay thread says it is up before any rank could block the driver; a
// rank started as a child process (src/executor/spawn.ts, as the relay starts them)
// takes its RankInit over IPC, builds its Worker and reports loaded / ready, stops on
// 'shutdown' with code 0; and a rank that fails to build writes its error to the pipe
// before it exits (the relay then has the reason to print).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveEngineArgs } from '../../src/config/engine_args.js';
import { loadModelConfig } from '../../src/config/model_config.js';
import type { FromRank, RankInit } from '../../src/executor/rank_messages.js';
import { spawnProcess, spawnThread } from '../../src/executor/spawn.js';

const MODEL = 'models/tiny-llama-kjv';

test('the relay thread posts relay_up as soon as it has started its ranks', async () => {
  const relay = spawnThread('rank_relay', { inits: [], devices: [] });
  try {
    const first = await new Promise<FromRank>((ok, ko) => {
      relay.once('message', ok);
      relay.once('error', ko);
    });
    assert.deepEqual(first, { type: 'relay_up' });
  } finally {
    await relay.terminate();
  }
});

/** A rank in a child process: its messages and exit code. */
async function runRank(init: RankInit): Promise<{ messages: FromRank[]; code: number | null }> {
  const child = spawnProcess('rank_main', { ...process.env, NCCL_NVLS_ENABLE: '0' });
  const messages: FromRank[] = [];
  const exited = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));
  const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
  child.on('message', (m: FromRank) => {
    messages.push(m);
    if (m.type === 'ready') child.send({ type: 'shutdown' });
  });
  try {
    child.send(init);
    return { messages, code: await exited };
  } finally {
    clearTimeout(guard);
    child.kill('SIGKILL'); // no-op once it has exited
  }
}

// A group of one, so the rank needs no peer and never waits in a barrier. Its buffer is
// a plain ArrayBuffer: no SharedArrayBuffer crosses a process (CUDA ranks join NCCL).
const aloneGroup = () => ({ kind: 'in_process' as const, group: { worldSize: 1, buffer: new ArrayBuffer(4096) as unknown as SharedArrayBuffer } });

test('a rank process builds its worker from the RankInit it is sent, then stops on shutdown', async () => {
  const config = resolveEngineArgs({ model: MODEL, device: 'cpu', maxModelLen: 64 });
  const init: RankInit = { config, modelConfig: loadModelConfig(MODEL, { maxModelLen: 64 }), rank: 0, size: 1, comm: aloneGroup() };
  const { messages, code } = await runRank(init);
  assert.deepEqual(messages, [{ type: 'loaded', rank: 0 }, { type: 'ready', rank: 0 }]);
  assert.equal(code, 0);
});

test('a rank process that fails to build sends its error before it exits with code 1', async () => {
  // As a CUDA rank would on a machine without NCCL: the CPU library refuses NCCL by name.
  const config = resolveEngineArgs({ model: MODEL, device: 'cpu', maxModelLen: 64 });
  const init: RankInit = { config, modelConfig: loadModelConfig(MODEL, { maxModelLen: 64 }), rank: 1, size: 2, comm: { kind: 'nccl', uniqueId: '00'.repeat(128) } };
  const { messages, code } = await runRank(init);
  assert.equal(messages[0].type, 'loaded');
  const err = messages.find((m) => m.type === 'error');
  assert.ok(err && err.type === 'error' && err.rank === 1 && /no NCCL/.test(err.message), JSON.stringify(messages));
  assert.equal(code, 1);
});
