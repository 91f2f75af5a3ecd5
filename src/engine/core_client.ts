// The main thread's handle on the engine core, which runs in a worker_threads
// worker (core_worker.ts): requests and aborts go in as messages, EngineCoreOutputs
// come back once per step. A worker that fails or exits marks the client dead.
import { Worker } from 'node:worker_threads';
import type { EngineArgs } from '../config/engine_args.js';
import type { CacheConfig, ModelConfig, SchedulerConfig } from '../config/types.js';
import { EngineDeadError } from '../errors.js';
import { spawnModuleWorker } from '../spawn_worker.js';
import type { EngineCoreOutputs, EngineCoreRequest } from '../core/types.js';

/** Main thread -> worker. */
export type ToCoreMessage =
  | { type: 'add'; request: EngineCoreRequest }
  | { type: 'abort'; requestIds: string[] }
  | { type: 'call'; id: number; method: CoreMethod }
  | { type: 'shutdown' }
  /** Fault injection for tests: the worker throws from its loop. */
  | { type: 'crash'; message: string };

export type CoreMethod = 'resetPrefixCache';

/** Worker -> main thread. */
export type FromCoreMessage =
  | { type: 'ready'; modelConfig: ModelConfig; cacheConfig: CacheConfig; schedulerConfig: SchedulerConfig }
  | { type: 'outputs'; outputs: EngineCoreOutputs }
  | { type: 'reply'; id: number; result?: unknown; error?: string }
  | { type: 'fatal'; message: string; stack?: string }
  | { type: 'shutdown_done' };

export interface CoreClientHandlers {
  onOutputs(outputs: EngineCoreOutputs): void;
  /** Called once when the worker fails or exits unexpectedly. */
  onDead(error: EngineDeadError): void;
}

/** The worker script next to this file: .js from dist/, .ts under tsx (tests). */
function spawnCoreWorker(workerData: unknown): Worker {
  return spawnModuleWorker(import.meta.url, 'core_worker', { workerData });
}

export class EngineCoreClient {
  private dead: EngineDeadError | null = null;
  private shuttingDown = false;
  private nextCallId = 0;
  private readonly pendingCalls = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private shutdownDone: (() => void) | null = null;

  private constructor(
    private readonly worker: Worker,
    readonly modelConfig: ModelConfig,
    readonly cacheConfig: CacheConfig,
    readonly schedulerConfig: SchedulerConfig,
  ) {}

  /** Starts the worker and waits until its EngineCore is built (weights loaded, KV cache allocated). */
  static start(args: EngineArgs, handlers: CoreClientHandlers): Promise<EngineCoreClient> {
    const worker = spawnCoreWorker({ args });
    return new Promise((resolve, reject) => {
      let client: EngineCoreClient | null = null;
      let lastFatal: string | null = null;
      const fail = (message: string) => {
        if (client === null) {
          reject(new Error(message));
          void worker.terminate();
          return;
        }
        client.markDead(message, handlers);
      };
      worker.on('message', (msg: FromCoreMessage) => {
        switch (msg.type) {
          case 'ready':
            client = new EngineCoreClient(worker, msg.modelConfig, msg.cacheConfig, msg.schedulerConfig);
            resolve(client);
            break;
          case 'outputs':
            if (client && !client.dead) handlers.onOutputs(msg.outputs);
            break;
          case 'reply':
            client?.settleCall(msg);
            break;
          case 'fatal':
            lastFatal = msg.message;
            fail(client === null ? msg.message : `the engine core failed: ${msg.message}`);
            break;
          case 'shutdown_done':
            client?.shutdownDone?.();
            break;
        }
      });
      worker.on('error', (err) => {
        fail(client === null ? err.message : `the engine core crashed: ${err.message}`);
      });
      worker.on('exit', (code) => {
        if (client?.shuttingDown) {
          client.shutdownDone?.();
          return;
        }
        fail(lastFatal ?? `the engine core worker exited (code ${code})${client === null ? ' before it was ready' : ''}`);
      });
    });
  }

  get isDead(): boolean {
    return this.dead !== null;
  }

  get deadError(): EngineDeadError | null {
    return this.dead;
  }

  private markDead(message: string, handlers: CoreClientHandlers): void {
    if (this.dead || this.shuttingDown) return;
    this.dead = new EngineDeadError(`${message}. The server must be restarted.`);
    for (const call of this.pendingCalls.values()) call.reject(this.dead);
    this.pendingCalls.clear();
    handlers.onDead(this.dead);
    void this.worker.terminate();
  }

  private settleCall(msg: { id: number; result?: unknown; error?: string }): void {
    const call = this.pendingCalls.get(msg.id);
    if (!call) return;
    this.pendingCalls.delete(msg.id);
    if (msg.error !== undefined) call.reject(new Error(msg.error));
    else call.resolve(msg.result);
  }

  private post(msg: ToCoreMessage): void {
    if (this.dead) throw this.dead;
    this.worker.postMessage(msg);
  }

  addRequest(request: EngineCoreRequest): void {
    this.post({ type: 'add', request });
  }

  abortRequests(requestIds: string[]): void {
    if (this.dead || this.shuttingDown || requestIds.length === 0) return;
    this.post({ type: 'abort', requestIds });
  }

  call<T>(method: CoreMethod): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextCallId++;
    return new Promise<T>((resolve, reject) => {
      this.pendingCalls.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.post({ type: 'call', id, method });
    });
  }

  /** Fault injection (tests): makes the worker throw from its loop. */
  crashForTesting(message = 'injected fault'): void {
    this.post({ type: 'crash', message });
  }

  /** Asks the worker to release the engine and stop; terminates it after `timeoutMs`. */
  async shutdown(timeoutMs = 5000): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    if (this.dead) return;
    const done = new Promise<void>((resolve) => (this.shutdownDone = resolve));
    this.worker.postMessage({ type: 'shutdown' } satisfies ToCoreMessage);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([done, timeout]);
    clearTimeout(timer);
    await this.worker.terminate();
  }
}
