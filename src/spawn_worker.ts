// Starts a worker_threads worker from a module beside the caller: the .js file when
// running from dist/, the .ts file under tsx (tests, benchmarks).
import { fileURLToPath } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** `base` is the caller's import.meta.url; `name` the entry module's file name without extension. */
export function spawnModuleWorker(base: string, name: string, options: WorkerOptions = {}): Worker {
  if (fileURLToPath(base).endsWith('.js')) return new Worker(new URL(`./${name}.js`, base), options);
  // NOTE: Node 20 does not apply `--import tsx` to a worker's entry module, so a
  // small ESM bootstrap registers tsx's loader and then imports the .ts entry.
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const entry = new URL(`./${name}.ts`, base).href;
  const code = `import(${JSON.stringify(tsxApi)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(code, { ...options, eval: true });
}
