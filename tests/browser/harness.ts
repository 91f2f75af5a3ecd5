// What the browser tests share: `vllm-ts serve` as a child process over the tiny
// model (or a copy of it), Debian's headless chromium through playwright-core, and
// a poll-until helper.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const CHROMIUM = '/usr/bin/chromium';
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export const skip =
  !existsSync(CHROMIUM) && !process.env.CI
    ? `${CHROMIUM} is missing: install it (apt-get install chromium) to run the browser test; CI always runs it`
    : false;

export interface Served {
  proc: ChildProcess;
  base: string;
  log: () => string;
}

/** `vllm-ts serve MODEL ...args` on a free port; resolves once it listens. */
export function serve(model: string, args: string[]): Promise<Served> {
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/entrypoints/cli/main.ts', 'serve', model, '--host', '127.0.0.1', '--port', '0', ...args],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  const log = () => out;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`vllm-ts serve did not start in 30 s:\n${out}`));
    }, 30_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /Starting vLLM API server on http:\/\/[^\s:]+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, base: `http://127.0.0.1:${m[1]}`, log });
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`vllm-ts serve exited (${code}) before listening:\n${out}`));
    });
  });
}

export async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Polls `fn` until it returns a truthy value; fails with `what` after `ms`. */
export async function until<T>(what: string, fn: () => Promise<T> | T, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
