// Starting an entry module of this folder as a worker thread or a child process:
// the .js file from dist/, or the .ts file under tsx (the tests).
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

const compiled = fileURLToPath(import.meta.url).endsWith('.js');

/** A worker thread running ./<name>.js (or .ts under tsx). */
export function spawnThread(name: string, workerData: unknown): Worker {
  if (compiled) return new Worker(new URL(`./${name}.js`, import.meta.url), { workerData });
  // NOTE: Node 20 does not apply `--import tsx` to a worker's entry module, so a
  // small ESM bootstrap registers tsx's loader and then imports the .ts entry.
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const entry = new URL(`./${name}.ts`, import.meta.url).href;
  const code = `import(${JSON.stringify(tsxApi)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(code, { eval: true, workerData });
}

/** A child process running ./<name>.js (or .ts under tsx), IPC with structured clone. */
export function spawnProcess(name: string, env: NodeJS.ProcessEnv): ChildProcess {
  const ext = compiled ? 'js' : 'ts';
  const execArgv = compiled ? [] : ['--import', import.meta.resolve('tsx')];
  return fork(fileURLToPath(new URL(`./${name}.${ext}`, import.meta.url)), [], { env, execArgv, serialization: 'advanced', stdio: 'inherit' });
}
