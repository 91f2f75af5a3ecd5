// `vllm-ts serve` as a child process on loopback (port 0): started the way a user
// starts it (node --import tsx src/entrypoints/cli/main.ts serve ...), with its
// stderr captured, its port read from the startup log, its RSS read from /proc.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface ServeProcess {
  child: ChildProcess;
  pid: number;
  base: string;
  /** Everything the server wrote to stderr (its log) so far. */
  stderr(): string;
  /** Resolves with the exit code (or the signal's name) once the process has exited. */
  exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | string>;
}

/** Runs `vllm-ts serve <model> ...args` from the repository root. */
export function spawnServe(model: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'src/entrypoints/cli/main.ts', 'serve', model, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Starts the server and waits for "Application startup complete" (or rejects with its log if it exits first). */
export async function startServe(model: string, args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<ServeProcess> {
  const child = spawnServe(model, ['--host', '127.0.0.1', '--port', '0', ...args], opts.env);
  let log = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (log += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (log += d));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`vllm-ts serve did not start within ${opts.timeoutMs ?? 60_000} ms:\n${log}`));
    }, opts.timeoutMs ?? 60_000);
    const check = () => {
      const m = /Starting vLLM API server on http:\/\/[^:]+:(\d+)/.exec(log);
      if (m && log.includes('Application startup complete')) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stderr!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`vllm-ts serve exited (${code}) before it was ready:\n${log}`));
    });
  });
  const stop = async (graceMs = 30_000) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    }
    return exited;
  };
  return { child, pid: child.pid!, base: `http://127.0.0.1:${port}`, stderr: () => log, exited, stop };
}

/** Resident set size of a process in bytes (VmRSS from /proc/<pid>/status). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

/** The value of one Prometheus sample (labels matched as a substring), or NaN. */
export async function metric(base: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  for (const line of text.split('\n')) {
    if (line.startsWith(name + '{') && line.includes(labels)) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return NaN;
}
