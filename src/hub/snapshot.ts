// A model's snapshot in the cache: which files a model needs, whether the cache
// already has them (then no request is sent), and downloading the rest
// (huggingface_hub's snapshot_download with vLLM's allow patterns).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { initLogger } from '../logger.js';
import { HubApi, HubError, type TreeEntry } from './api.js';
import { RepoCache } from './cache.js';
import { hubOffline } from './constants.js';
import { downloadFile } from './download.js';
import { type DownloadProgressOption, SnapshotProgress } from './progress.js';

const logger = initLogger('hub');

/** Which parts of a repo to fetch. */
export interface Want {
  config: boolean;
  tokenizer: boolean;
  weights: boolean;
}

export const CONFIG_FILES = ['config.json', 'generation_config.json'];
export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'chat_template.json'];
export const INDEX_FILE = 'model.safetensors.index.json';
const OTHER_WEIGHTS = /\.(bin|pth|pt|gguf|ckpt|h5|msgpack)$/;
/** Shards downloaded at once (huggingface_hub's default max_workers). */
const CONCURRENCY = 8;

function smallFiles(want: Want): string[] {
  return [...(want.config ? CONFIG_FILES : []), ...(want.tokenizer ? TOKENIZER_FILES : []), ...(want.weights ? [INDEX_FILE] : [])];
}

function requiredFiles(want: Want): string[] {
  return [...(want.config ? ['config.json'] : []), ...(want.tokenizer ? ['tokenizer.json'] : [])];
}

function indexShards(indexPath: string): string[] {
  const index = JSON.parse(readFileSync(indexPath, 'utf8')) as { weight_map?: Record<string, string> };
  return [...new Set(Object.values(index.weight_map ?? {}))].sort();
}

/**
 * The first file the cached snapshot lacks, or null when it has all a model needs.
 * `strict`: every optional file must be there or recorded as absent in .no_exist
 * (then nothing changed since the download and no request is needed); otherwise only
 * what loading needs (offline mode, or the Hub unreachable).
 */
export function missingFromSnapshot(cache: RepoCache, commit: string, want: Want, strict: boolean): string | null {
  const dir = cache.snapshotDir(commit);
  const has = (f: string) => existsSync(join(dir, f));
  const required = requiredFiles(want);
  for (const f of smallFiles(want)) {
    if (has(f) || cache.isMarkedMissing(commit, f)) continue;
    if (strict || required.includes(f)) return f;
  }
  if (!want.weights) return null;
  if (has(INDEX_FILE)) {
    for (const shard of indexShards(join(dir, INDEX_FILE))) if (!has(shard)) return shard;
    return null;
  }
  const single = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.safetensors')) : [];
  return single.length > 0 ? null : '*.safetensors';
}

export interface SnapshotOptions {
  revision: string;
  cacheDir: string;
  want: Want;
  progress?: DownloadProgressOption;
}

/** The snapshot folder of `repoId` at `revision`, downloaded into the cache where needed. */
export async function snapshotDownload(repoId: string, opts: SnapshotOptions): Promise<string> {
  const cache = new RepoCache(opts.cacheDir, repoId);
  const cached = cache.commitFor(opts.revision);
  if (cached && missingFromSnapshot(cache, cached, opts.want, true) === null) {
    new SnapshotProgress(repoId, opts.progress).finish(cache.snapshotDir(cached), cached);
    return cache.snapshotDir(cached);
  }
  if (hubOffline()) return offlineSnapshot(cache, cached, opts);

  const api = new HubApi(repoId, opts.revision);
  let commit: string;
  try {
    commit = await api.commitOf();
  } catch (e) {
    // huggingface_hub falls back to the cache when the Hub cannot be reached.
    if (e instanceof HubError && e.kind === 'network' && cached && missingFromSnapshot(cache, cached, opts.want, false) === null) {
      logger.warn(`${e.message}; using the cached snapshot ${cache.snapshotDir(cached)}`);
      return cache.snapshotDir(cached);
    }
    throw e;
  }
  const progress = new SnapshotProgress(repoId, opts.progress);
  try {
    await downloadSnapshot(api, cache, commit, opts.want, progress);
  } catch (e) {
    progress.abort();
    throw e;
  }
  cache.writeRef(opts.revision, commit);
  progress.finish(cache.snapshotDir(commit), commit);
  return cache.snapshotDir(commit);
}

function offlineSnapshot(cache: RepoCache, commit: string | null, opts: SnapshotOptions): string {
  const fix = 'download it once with the network (or copy the model folder here and pass its path)';
  if (!commit) {
    throw new HubError('offline', `HF_HUB_OFFLINE=1 and ${cache.repoId}@${opts.revision} is not in the cache ${cache.cacheDir} (no ${join(cache.root, 'refs', opts.revision)}): ${fix}`);
  }
  const missing = missingFromSnapshot(cache, commit, opts.want, false);
  if (missing) {
    throw new HubError('offline', `HF_HUB_OFFLINE=1 and the cached ${cache.repoId}@${opts.revision} lacks ${join(cache.snapshotDir(commit), missing)}: ${fix}`);
  }
  return cache.snapshotDir(commit);
}

async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async () => {
    while (next < items.length && errors.length === 0) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (e) {
        errors.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (errors.length > 0) throw errors[0];
}

async function downloadSnapshot(api: HubApi, cache: RepoCache, commit: string, want: Want, progress: SnapshotProgress): Promise<void> {
  const tree = await api.tree(commit);
  const byPath = new Map(tree.map((e) => [e.path, e]));
  if (want.config && !byPath.has('config.json')) {
    throw new HubError('entry-not-found', `${api.repoId}@${api.revision} has no config.json: it is not a transformers model repository`);
  }
  const small = smallFiles(want);
  await pool(small.filter((f) => byPath.has(f)), CONCURRENCY, (f) => downloadFile(api, cache, commit, byPath.get(f)!, progress));
  for (const f of small) if (!byPath.has(f)) cache.markMissing(commit, f);
  if (!want.weights) return;

  let weights: TreeEntry[];
  if (byPath.has(INDEX_FILE)) {
    weights = indexShards(join(cache.snapshotDir(commit), INDEX_FILE)).map((shard) => {
      const e = byPath.get(shard);
      if (!e) throw new HubError('entry-not-found', `${api.repoId}@${api.revision}: ${INDEX_FILE} lists ${shard}, which the repository lacks`);
      return e;
    });
  } else {
    // Top-level safetensors only (not original/ or other subfolders).
    weights = tree.filter((e) => e.path.endsWith('.safetensors') && !e.path.includes('/'));
  }
  if (weights.length === 0) {
    const others = tree.filter((e) => OTHER_WEIGHTS.test(e.path)).map((e) => e.path);
    throw new HubError(
      'entry-not-found',
      `${api.repoId}@${api.revision} has no *.safetensors weights${others.length ? ` (only ${others.slice(0, 3).join(', ')})` : ''}: vllm-ts loads safetensors checkpoints only`,
    );
  }
  // Largest first, so that the long downloads start early.
  weights.sort((a, b) => b.size - a.size);
  await pool(weights, CONCURRENCY, (e) => downloadFile(api, cache, commit, e, progress));
}
