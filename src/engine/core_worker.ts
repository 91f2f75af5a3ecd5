// Entry of the engine-core worker thread: builds the EngineCore, then loops —
// apply the messages that arrived (add / abort / call / shutdown), step while
// there is work, post each step's EngineCoreOutputs back — and sleeps on the
// message port when idle (no busy-spinning).
import { parentPort, workerData } from 'node:worker_threads';
import type { EngineArgs } from '../config/engine_args.js';
import { SamplingParams } from '../sampling_params.js';
import { EngineCore } from './core.js';
import type { FromCoreMessage, ToCoreMessage } from './core_client.js';
import type { EngineCoreOutputs } from '../core/types.js';

const port = parentPort!;
const inbox: ToCoreMessage[] = [];
let wake: (() => void) | null = null;

port.on('message', (msg: ToCoreMessage) => {
  inbox.push(msg);
  const w = wake;
  wake = null;
  w?.();
});

function post(msg: FromCoreMessage): void {
  port.postMessage(msg);
}

/** Applies the queued messages; false once a shutdown was asked for. */
function drain(core: EngineCore): boolean {
  while (inbox.length > 0) {
    const msg = inbox.shift()!;
    switch (msg.type) {
      case 'add':
        // The thread boundary: postMessage dropped the prototype; re-hydrated here, once.
        msg.request.samplingParams = SamplingParams.fromPlain(msg.request.samplingParams);
        core.addRequest(msg.request);
        break;
      case 'abort':
        core.abortRequests(msg.requestIds);
        break;
      case 'call':
        try {
          post({ type: 'reply', id: msg.id, result: core[msg.method]() });
        } catch (e) {
          post({ type: 'reply', id: msg.id, error: (e as Error).message });
        }
        break;
      case 'crash':
        throw new Error(msg.message);
      case 'shutdown':
        return false;
    }
  }
  return true;
}

async function main(): Promise<void> {
  const { args } = workerData as { args: EngineArgs };
  let core: EngineCore;
  try {
    core = await EngineCore.create(args);
  } catch (e) {
    const err = e as Error;
    post({ type: 'fatal', message: err.message, stack: err.stack });
    return;
  }
  post({
    type: 'ready',
    modelConfig: core.modelConfig,
    cacheConfig: core.cacheConfig,
    schedulerConfig: core.schedulerConfig,
  });

  let busy = false;
  for (;;) {
    if (!drain(core)) break;
    if (core.hasUnfinishedRequests()) {
      busy = true;
      const outputs: EngineCoreOutputs = core.step();
      if (outputs.outputs.length > 0 || outputs.schedulerStats !== null) post({ type: 'outputs', outputs });
      // Let the messages that arrived during the step in (setImmediate runs after I/O).
      await new Promise<void>((resolve) => setImmediate(resolve));
      continue;
    }
    if (busy) {
      // NOTE: step() is not called when idle, so the last stats it reported would
      // show the requests that were just aborted or finished as still running.
      busy = false;
      const schedulerStats = core.idleStats();
      post({ type: 'outputs', outputs: { outputs: [], schedulerStats, timestamp: Date.now() / 1000 } });
    }
    if (inbox.length === 0) await new Promise<void>((resolve) => (wake = resolve));
  }
  core.shutdown();
  post({ type: 'shutdown_done' });
  port.close();
}

main().catch((e: Error) => {
  post({ type: 'fatal', message: e.message, stack: e.stack });
  // Rethrown so that the main thread also sees the worker's 'error' event and exit.
  throw e;
});
