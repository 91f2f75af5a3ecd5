// One file into the cache: HEAD for its ETag, then the blob under a lock, written
// to blobs/<etag>.incomplete (continued with a Range request when a previous run
// left one), checked (size; sha256 for LFS files) and only then renamed into place.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, openSync, closeSync, renameSync, statSync, truncateSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type FileMetadata, HubApi, HubError, type TreeEntry } from './api.js';
import type { RepoCache } from './cache.js';
import { downloadTimeoutMs } from './constants.js';
import { acquireLock } from './lock.js';

/** Progress of one file, in bytes. */
export interface FileProgress {
  /** Bytes already there (a resumed .incomplete) when the download started. */
  start(path: string, total: number, resumedFrom: number): void;
  advance(path: string, bytes: number): void;
  done(path: string, fetched: boolean): void;
}

const MAX_ATTEMPTS = 5;

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Makes snapshots/<commit>/<entry.path> point at a verified blob and returns the
 * pointer's path. `commit` is the snapshot's; the HEAD answer's X-Repo-Commit must agree.
 */
export async function downloadFile(api: HubApi, cache: RepoCache, commit: string, entry: TreeEntry, progress: FileProgress): Promise<string> {
  const pointer = `${cache.snapshotDir(commit)}/${entry.path}`;
  if (existsSync(pointer)) {
    progress.done(entry.path, false);
    return pointer;
  }
  const meta = await api.metadata(commit, entry.path);
  if (meta.commit && meta.commit !== commit) {
    throw new HubError('http', `${api.repoId}/${entry.path}: the Hub answered for commit ${meta.commit}, expected ${commit}`);
  }
  const expectedSize = entry.lfs?.size ?? entry.size;
  if (meta.size !== expectedSize) {
    throw new HubError('integrity', `${api.repoId}/${entry.path}: the Hub's size ${meta.size} disagrees with the tree's ${expectedSize}`);
  }
  const blob = cache.blobPath(meta.etag);
  const sizeOk = (p: string) => existsSync(p) && statSync(p).size === meta.size;
  if (!sizeOk(blob)) {
    const lock = await acquireLock(cache.lockPath(meta.etag));
    try {
      // Another process may have finished it while we waited for the lock.
      if (!sizeOk(blob)) await fetchBlob(api, meta, blob, entry, progress);
      else progress.done(entry.path, false);
    } finally {
      lock.release();
    }
  } else {
    progress.done(entry.path, false);
  }
  return cache.link(commit, entry.path, meta.etag);
}

async function fetchBlob(api: HubApi, meta: FileMetadata, blob: string, entry: TreeEntry, progress: FileProgress): Promise<void> {
  const incomplete = `${blob}.incomplete`;
  mkdirSync(dirname(blob), { recursive: true });
  let offset = existsSync(incomplete) ? statSync(incomplete).size : 0;
  if (offset > meta.size) {
    truncateSync(incomplete, 0);
    offset = 0;
  }
  progress.start(entry.path, meta.size, offset);
  const fd = openSync(incomplete, 'a');
  try {
    for (let attempt = 1; offset < meta.size; attempt++) {
      try {
        offset = await fetchRange(api, meta, fd, offset, (n) => progress.advance(entry.path, n), incomplete);
      } catch (e) {
        if (!(e instanceof RetryableError)) throw e;
        if (attempt >= MAX_ATTEMPTS) throw new HubError('network', `${e.message}; gave up after ${attempt} attempts (${incomplete} is kept and continued next time)`);
        await sleep(Math.min(500 * 2 ** (attempt - 1), 8000));
        // The bytes written so far stay; the next attempt continues from them.
        offset = statSync(incomplete).size;
      }
    }
  } finally {
    closeSync(fd);
  }
  const size = statSync(incomplete).size;
  if (size !== meta.size) {
    throw new HubError('integrity', `${api.repoId}/${entry.path}: downloaded ${size} bytes, expected ${meta.size}`);
  }
  const sha256 = meta.lfs ? (entry.lfs?.oid ?? meta.etag) : null;
  if (sha256) {
    const got = await sha256File(incomplete);
    if (got !== sha256) {
      truncateSync(incomplete, 0);
      throw new HubError('integrity', `${api.repoId}/${entry.path}: sha256 ${got} does not match the Hub's ${sha256}; the download was discarded, run again`);
    }
  }
  renameSync(incomplete, blob);
  progress.done(entry.path, true);
}

class RetryableError extends Error {}

/** GETs bytes [offset, size) onto the end of fd; returns the new offset. A 200 to a Range request restarts from 0. */
async function fetchRange(api: HubApi, meta: FileMetadata, fd: number, offset: number, onBytes: (n: number) => void, incomplete: string): Promise<number> {
  const idle = new AbortController();
  let timer = setTimeout(() => idle.abort(), downloadTimeoutMs());
  const headers: Record<string, string> = { 'accept-encoding': 'identity', ...api.authHeaders(meta.location) };
  if (offset > 0) headers.range = `bytes=${offset}-`;
  let res: Response;
  try {
    api.requests++;
    res = await fetch(meta.location, { headers, signal: idle.signal });
  } catch (e) {
    clearTimeout(timer);
    throw new RetryableError(`${api.repoId}: download of ${meta.location} failed (${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message})`);
  }
  try {
    if (res.status === 416 && offset === meta.size) return offset;
    if (res.status >= 500) throw new RetryableError(`${api.repoId}: ${meta.location} answered ${res.status}`);
    if (!res.ok) throw await api.error(res, meta.location);
    if (offset > 0 && res.status !== 206) {
      // The server ignored the Range: start over.
      truncateSync(incomplete, 0);
      onBytes(-offset);
      offset = 0;
    }
    if (!res.body) throw new RetryableError(`${meta.location}: empty body`);
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      clearTimeout(timer);
      timer = setTimeout(() => idle.abort(), downloadTimeoutMs());
      for (let w = 0; w < chunk.byteLength; ) w += writeSync(fd, chunk, w);
      offset += chunk.byteLength;
      onBytes(chunk.byteLength);
      if (offset > meta.size) throw new HubError('integrity', `${api.repoId}: ${meta.location} sent more than ${meta.size} bytes`);
    }
    return offset;
  } catch (e) {
    if (e instanceof HubError || e instanceof RetryableError) throw e;
    throw new RetryableError(`${api.repoId}: download of ${meta.location} broke off at byte ${offset} (${(e as Error).message})`);
  } finally {
    clearTimeout(timer);
  }
}
