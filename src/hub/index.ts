// Model ids as vLLM resolves them: a folder that exists wins; otherwise `org/name`
// is a Hugging Face Hub repository, fetched into huggingface_hub's cache (or
// --download-dir) and loaded from its snapshot folder.
import { existsSync } from 'node:fs';
import type { EngineArgs } from '../config/engine_args.js';
import { hubCacheDir, REPO_ID_RE } from './constants.js';
import type { DownloadProgressOption } from './progress.js';
import { snapshotDownload, type Want } from './snapshot.js';

export { HubError } from './api.js';
export type { DownloadProgressEvent, DownloadProgressOption } from './progress.js';
export { hubCacheDir } from './constants.js';

export interface ResolveOptions {
  revision?: string;
  /** The cache root (default: HF_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface/hub). */
  downloadDir?: string;
  want?: Want;
  progress?: DownloadProgressOption;
}

/** A local folder or file as is; a Hub id's snapshot folder, downloaded where needed. */
export async function resolveModelPath(model: string, opts: ResolveOptions = {}): Promise<string> {
  if (existsSync(model)) return model;
  if (!REPO_ID_RE.test(model) || model.includes('..')) {
    throw new Error(`${model}: no such model folder, and not a Hugging Face Hub id (org/name) either`);
  }
  return snapshotDownload(model, {
    revision: opts.revision ?? 'main',
    cacheDir: opts.downloadDir ?? hubCacheDir(),
    want: opts.want ?? { config: true, tokenizer: true, weights: true },
    progress: opts.progress,
  });
}

/**
 * EngineArgs with `model` and `tokenizer` turned into local folders. The model's
 * tokenizer files come with it unless --tokenizer names another; weights are not
 * fetched for --load-format dummy.
 */
export async function resolveModelFiles<T extends EngineArgs>(args: T, progress?: DownloadProgressOption): Promise<T> {
  const model = await resolveModelPath(args.model, {
    revision: args.revision,
    downloadDir: args.downloadDir,
    want: { config: true, tokenizer: args.tokenizer === undefined, weights: args.loadFormat !== 'dummy' },
    progress,
  });
  const tokenizer = args.tokenizer === undefined ? undefined : await resolveModelPath(args.tokenizer, {
    revision: args.tokenizerRevision,
    downloadDir: args.downloadDir,
    want: { config: false, tokenizer: true, weights: false },
    progress,
  });
  if (model === args.model && tokenizer === args.tokenizer) return args;
  // The API keeps naming the model by its id (vLLM's served_model_name default), not the snapshot path.
  return { ...args, model, tokenizer, servedModelName: args.servedModelName ?? args.model };
}
