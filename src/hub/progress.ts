// Download progress: a cli-progress bar per file (bytes, rate, ETA) on a TTY, a
// one-line summary otherwise; or the caller's callback; or nothing.
import cliProgress from 'cli-progress';
import { initLogger } from '../logger.js';
import { progressBarsDisabled } from './constants.js';
import type { FileProgress } from './download.js';

/** One update of a file download (LLM.create's `downloadProgress` callback receives these). */
export interface DownloadProgressEvent {
  repoId: string;
  file: string;
  /** 'start': bytes to fetch are known; 'progress': more arrived; 'done': the file is in place. */
  phase: 'start' | 'progress' | 'done';
  downloadedBytes: number;
  totalBytes: number;
}

/** true / undefined: bars on a TTY, else a summary line; false: silent; a function: called instead. */
export type DownloadProgressOption = boolean | ((event: DownloadProgressEvent) => void);

const logger = initLogger('hub');

export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export class SnapshotProgress implements FileProgress {
  private readonly sizes = new Map<string, { total: number; got: number }>();
  private readonly bars = new Map<string, cliProgress.SingleBar>();
  private multi: cliProgress.MultiBar | null = null;
  private readonly t0 = performance.now();
  private fetchedBytes = 0;
  private fetchedFiles = 0;

  constructor(private readonly repoId: string, private readonly option: DownloadProgressOption = true) {}

  private get callback() {
    return typeof this.option === 'function' ? this.option : null;
  }

  private get useBars(): boolean {
    return this.option === true && process.stderr.isTTY === true && !progressBarsDisabled();
  }

  start(path: string, total: number, resumedFrom: number): void {
    this.sizes.set(path, { total, got: resumedFrom });
    this.callback?.({ repoId: this.repoId, file: path, phase: 'start', downloadedBytes: resumedFrom, totalBytes: total });
    if (this.useBars) {
      this.multi ??= new cliProgress.MultiBar({
        format: '{file} |{bar}| {percentage}% {got}/{size} {rate} ETA {eta_formatted}',
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 50,
      }, cliProgress.Presets.shades_classic);
      this.bars.set(path, this.multi.create(total, resumedFrom, { file: path.padEnd(32).slice(0, 32), got: formatBytes(resumedFrom), size: formatBytes(total), rate: '' }));
    }
  }

  advance(path: string, bytes: number): void {
    const s = this.sizes.get(path);
    if (!s) return;
    s.got += bytes;
    this.fetchedBytes += bytes;
    this.callback?.({ repoId: this.repoId, file: path, phase: 'progress', downloadedBytes: s.got, totalBytes: s.total });
    const secs = (performance.now() - this.t0) / 1000;
    this.bars.get(path)?.update(s.got, { got: formatBytes(s.got), rate: `${formatBytes(this.fetchedBytes / Math.max(secs, 1e-3))}/s` });
  }

  done(path: string, fetched: boolean): void {
    if (fetched) this.fetchedFiles++;
    const s = this.sizes.get(path);
    if (s) this.callback?.({ repoId: this.repoId, file: path, phase: 'done', downloadedBytes: s.total, totalBytes: s.total });
    this.bars.get(path)?.update(s?.total ?? 0, { got: formatBytes(s?.total ?? 0) });
  }

  /** Stops the bars and prints the summary line (unless silent or a callback). */
  finish(where: string, commit: string): void {
    this.multi?.stop();
    if (this.option !== true) return;
    const secs = (performance.now() - this.t0) / 1000;
    if (this.fetchedFiles === 0) {
      logger.info(`Using ${this.repoId}@${commit.slice(0, 7)} from the cache: ${where}`);
      return;
    }
    logger.info(
      `Downloaded ${this.fetchedFiles} file${this.fetchedFiles === 1 ? '' : 's'} (${formatBytes(this.fetchedBytes)}) of ${this.repoId}@${commit.slice(0, 7)} ` +
        `in ${secs.toFixed(1)} s (${formatBytes(this.fetchedBytes / Math.max(secs, 1e-3))}/s) into ${where}`,
    );
  }

  abort(): void {
    this.multi?.stop();
  }
}
