// huggingface_hub's cache layout, which Python and vllm-ts share:
//   <cache>/models--org--name/blobs/<etag>               file contents, by ETag
//   <cache>/models--org--name/snapshots/<commit>/<path>  relative symlinks into blobs/
//   <cache>/models--org--name/refs/<revision>            the commit a branch / tag points to
//   <cache>/models--org--name/.no_exist/<commit>/<path>  an optional file the repo lacks
//   <cache>/.locks/models--org--name/<etag>.lock         one downloader per blob (flock)
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { COMMIT_RE } from './constants.js';

export class RepoCache {
  /** models--org--name */
  readonly folderName: string;
  /** <cache>/models--org--name */
  readonly root: string;

  constructor(readonly cacheDir: string, readonly repoId: string) {
    this.folderName = `models--${repoId.split('/').join('--')}`;
    this.root = join(cacheDir, this.folderName);
  }

  blobPath(etag: string): string {
    return join(this.root, 'blobs', etag);
  }

  lockPath(etag: string): string {
    return join(this.cacheDir, '.locks', this.folderName, `${etag}.lock`);
  }

  snapshotDir(commit: string): string {
    return join(this.root, 'snapshots', commit);
  }

  /** The commit a revision names: itself when it is a commit hash, else refs/<revision> (null when not cached). */
  commitFor(revision: string): string | null {
    const ref = join(this.root, 'refs', revision);
    if (existsSync(ref)) {
      const commit = readFileSync(ref, 'utf8').trim();
      if (COMMIT_RE.test(commit)) return commit;
    }
    return COMMIT_RE.test(revision) ? revision : null;
  }

  /** Writes refs/<revision> (a branch or tag name; not for commit hashes), atomically. */
  writeRef(revision: string, commit: string): void {
    if (revision === commit) return;
    const ref = join(this.root, 'refs', revision);
    mkdirSync(dirname(ref), { recursive: true });
    if (existsSync(ref) && readFileSync(ref, 'utf8').trim() === commit) return;
    const tmp = `${ref}.${process.pid}.tmp`;
    writeFileSync(tmp, commit);
    renameSync(tmp, ref);
  }

  /** snapshots/<commit>/<path> -> ../../blobs/<etag>, replacing what was there. */
  link(commit: string, path: string, etag: string): string {
    const pointer = join(this.snapshotDir(commit), path);
    mkdirSync(dirname(pointer), { recursive: true });
    const target = relative(dirname(pointer), this.blobPath(etag));
    const tmp = `${pointer}.${process.pid}.tmp`;
    rmSync(tmp, { force: true });
    symlinkSync(target, tmp);
    renameSync(tmp, pointer);
    return pointer;
  }

  /** Records that an optional file does not exist at this commit (as huggingface_hub does). */
  markMissing(commit: string, path: string): void {
    const marker = join(this.root, '.no_exist', commit, path);
    mkdirSync(dirname(marker), { recursive: true });
    if (!existsSync(marker)) writeFileSync(marker, '');
  }

  isMarkedMissing(commit: string, path: string): boolean {
    return existsSync(join(this.root, '.no_exist', commit, path));
  }
}
