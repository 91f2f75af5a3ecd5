// The Hub settings huggingface_hub reads from the environment, with its defaults
// and precedence, read at call time (so a process can change them before a load).
import { homedir } from 'node:os';
import { join } from 'node:path';

const truthy = (v: string | undefined) => v !== undefined && ['1', 'ON', 'YES', 'TRUE'].includes(v.toUpperCase());

/** HF_ENDPOINT, default the public Hub; no trailing slash. */
export function hubEndpoint(): string {
  return (process.env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, '');
}

/** HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. */
export function hfHome(): string {
  return process.env.HF_HOME || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'huggingface');
}

/** HF_HUB_CACHE (or the older HUGGINGFACE_HUB_CACHE), else $HF_HOME/hub. */
export function hubCacheDir(): string {
  return process.env.HF_HUB_CACHE || process.env.HUGGINGFACE_HUB_CACHE || join(hfHome(), 'hub');
}

/** HF_HUB_OFFLINE=1 (or TRANSFORMERS_OFFLINE=1): the cache only, no request. */
export function hubOffline(): boolean {
  return truthy(process.env.HF_HUB_OFFLINE) || truthy(process.env.TRANSFORMERS_OFFLINE);
}

/** HF_HUB_DISABLE_PROGRESS_BARS=1 turns the bars off (the summary line stays). */
export function progressBarsDisabled(): boolean {
  return truthy(process.env.HF_HUB_DISABLE_PROGRESS_BARS);
}

/** Seconds to wait for the Hub's metadata answers (HF_HUB_ETAG_TIMEOUT, default 10). */
export function etagTimeoutMs(): number {
  const s = Number(process.env.HF_HUB_ETAG_TIMEOUT);
  return (Number.isFinite(s) && s > 0 ? s : 10) * 1000;
}

/** Seconds without a byte before a download is retried (HF_HUB_DOWNLOAD_TIMEOUT, default 10). */
export function downloadTimeoutMs(): number {
  const s = Number(process.env.HF_HUB_DOWNLOAD_TIMEOUT);
  return (Number.isFinite(s) && s > 0 ? s : 10) * 1000;
}

/** Where `huggingface-cli login` writes the token: HF_TOKEN_PATH, else $HF_HOME/token. */
export function tokenPath(): string {
  return process.env.HF_TOKEN_PATH || join(hfHome(), 'token');
}

export const REPO_ID_RE = /^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/;
export const COMMIT_RE = /^[0-9a-f]{40}$/;
