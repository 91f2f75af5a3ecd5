// An advisory lock on a file (flock(2), as Python's filelock takes it on the same
// .lock paths), so that two processes — vllm-ts or huggingface_hub — never write
// the same blob at once. The kernel drops it when the process dies: no stale locks.
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const require = createRequire(import.meta.url);
const koffi = require('koffi') as typeof import('koffi');

const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;

let flock: ((fd: number, op: number) => number) | null = null;
function libcFlock(): (fd: number, op: number) => number {
  flock ??= koffi.load('libc.so.6').func('int flock(int fd, int op)') as (fd: number, op: number) => number;
  return flock;
}

export interface FileLock {
  release(): void;
}

/**
 * Takes the lock at `path` (created if missing), polling without blocking the
 * event loop; `onWait` is called once if another holder makes us wait.
 */
export async function acquireLock(path: string, onWait?: () => void): Promise<FileLock> {
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, 'a');
  const f = libcFlock();
  let waited = false;
  let delay = 20;
  while (f(fd, LOCK_EX | LOCK_NB) !== 0) {
    if (!waited) onWait?.();
    waited = true;
    await sleep(delay);
    delay = Math.min(delay * 2, 500);
  }
  let held = true;
  return {
    release() {
      if (!held) return;
      held = false;
      f(fd, LOCK_UN);
      closeSync(fd);
    },
  };
}
