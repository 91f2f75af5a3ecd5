// A real server on loopback (port 0) over the tiny model, with a small config so
// that tests stay fast on two shared cores.
import type { EngineArgs } from '../../src/config/engine_args.js';
import { AsyncLLM } from '../../src/engine/async_llm.js';
import { ApiServer, type ApiServerOptions } from '../../src/entrypoints/openai/api_server.js';

export const MODEL = 'models/tiny-llama-kjv';

export const SMALL_ARGS: EngineArgs = {
  model: MODEL,
  maxModelLen: 512,
  maxNumSeqs: 16,
  kvCacheMemoryBytes: 8 << 20,
  numThreads: 1,
  device: 'cpu',
};

export interface TestServer {
  engine: AsyncLLM;
  server: ApiServer;
  base: string;
}

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

export async function startServer(opts: ApiServerOptions = {}, args: Partial<EngineArgs> = {}): Promise<TestServer> {
  const engine = await AsyncLLM.create({ ...SMALL_ARGS, ...args });
  return attachServer(engine, opts);
}

/** Another HTTP server over the same engine (e.g. with other CORS or key settings). */
export async function attachServer(engine: AsyncLLM, opts: ApiServerOptions = {}): Promise<TestServer> {
  const server = new ApiServer(engine, { logRequests: false, logger: quiet, ...opts });
  const addr = await server.listen(0, '127.0.0.1');
  return { engine, server, base: `http://127.0.0.1:${addr.port}` };
}

/** The value of one Prometheus sample (labels matched as a substring), or NaN. */
export async function metric(base: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  for (const line of text.split('\n')) {
    if (line.startsWith(name + '{') && line.includes(labels)) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return NaN;
}

/** Polls `fn` until it returns true, for up to `ms`. */
export async function waitFor(fn: () => Promise<boolean> | boolean, ms = 3000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await fn()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return fn();
}
