// The Hub's HTTP API as huggingface_hub speaks it: repo info at a revision, the
// file tree, and HEAD /{repo}/resolve/{rev}/{file} for a file's ETag, size and
// commit. Errors become HubError with a message that says what to do.
import { existsSync, readFileSync } from 'node:fs';
import { etagTimeoutMs, hubEndpoint, tokenPath } from './constants.js';

export type HubErrorKind = 'gated' | 'repo-not-found' | 'revision-not-found' | 'entry-not-found' | 'offline' | 'network' | 'http' | 'integrity';

export class HubError extends Error {
  constructor(readonly kind: HubErrorKind, message: string) {
    super(message);
    this.name = 'HubError';
  }
}

/** One file of the repo tree (GET /api/models/{repo}/tree/{rev}). */
export interface TreeEntry {
  path: string;
  size: number;
  /** The git blob id (the ETag of a non-LFS file). */
  oid: string;
  /** LFS files: the sha256 of the content (their ETag) and its size. */
  lfs?: { oid: string; size: number };
}

/** What HEAD /{repo}/resolve/{commit}/{file} says about a file. */
export interface FileMetadata {
  commit: string | null;
  etag: string;
  size: number;
  /** Where to GET it: the resolve URL, or the redirect's target (LFS files on another host). */
  location: string;
  lfs: boolean;
}

/** HF_TOKEN (or HUGGING_FACE_HUB_TOKEN), else the file `huggingface-cli login` writes; null when neither. */
export function hubToken(): string | null {
  const env = process.env.HF_TOKEN || process.env.HUGGING_FACE_HUB_TOKEN;
  if (env) return env.trim();
  const path = tokenPath();
  if (existsSync(path)) {
    const t = readFileSync(path, 'utf8').trim();
    if (t) return t;
  }
  return null;
}

const quoteRepo = (repoId: string) => repoId.split('/').map(encodeURIComponent).join('/');
const quotePath = (path: string) => path.split('/').map(encodeURIComponent).join('/');

/** W/"abc" or "abc" -> abc */
function normalizeEtag(v: string | null): string | null {
  if (!v) return null;
  return v.replace(/^W\//, '').replace(/^"|"$/g, '');
}

export class HubApi {
  readonly endpoint = hubEndpoint();
  readonly token = hubToken();
  /** Requests sent (the tests count them through the server; this is for logs). */
  requests = 0;

  constructor(readonly repoId: string, readonly revision: string) {}

  get repoUrl(): string {
    return `${this.endpoint}/${this.repoId}`;
  }

  resolveUrl(commit: string, path: string): string {
    return `${this.endpoint}/${quoteRepo(this.repoId)}/resolve/${encodeURIComponent(commit)}/${quotePath(path)}`;
  }

  /** Authorization for the Hub itself; never sent to another origin (an LFS redirect's CDN). */
  authHeaders(url: string): Record<string, string> {
    if (!this.token || new URL(url).origin !== new URL(this.endpoint).origin) return {};
    return { authorization: `Bearer ${this.token}` };
  }

  /** A metadata request with the ETag timeout; network failures become HubError('network'). */
  async request(url: string, init: RequestInit = {}): Promise<Response> {
    this.requests++;
    try {
      return await fetch(url, {
        ...init,
        headers: { 'user-agent': 'vllm-ts; huggingface_hub-compatible', ...this.authHeaders(url), ...(init.headers as Record<string, string>) },
        signal: init.signal ?? AbortSignal.timeout(etagTimeoutMs()),
      });
    } catch (e) {
      const err = e as Error & { cause?: { code?: string; message?: string } };
      const why = err.cause?.code ?? err.cause?.message ?? err.message;
      throw new HubError('network', `cannot reach the Hub at ${this.endpoint} (${why}) for ${this.repoId}`);
    }
  }

  /** GET /api/models/{repo}/revision/{rev}: the commit the revision points to. */
  async commitOf(): Promise<string> {
    const url = `${this.endpoint}/api/models/${quoteRepo(this.repoId)}/revision/${encodeURIComponent(this.revision)}`;
    const res = await this.request(url);
    if (!res.ok) throw await this.error(res);
    const info = (await res.json()) as { sha?: unknown };
    if (typeof info.sha !== 'string') throw new HubError('http', `${url} answered without a commit sha`);
    return info.sha;
  }

  /** GET /api/models/{repo}/tree/{commit}?recursive=true, following the Link pagination. */
  async tree(commit: string): Promise<TreeEntry[]> {
    let url: string | null = `${this.endpoint}/api/models/${quoteRepo(this.repoId)}/tree/${encodeURIComponent(commit)}?recursive=true&expand=false`;
    const out: TreeEntry[] = [];
    while (url) {
      const res = await this.request(url);
      if (!res.ok) throw await this.error(res);
      const page = (await res.json()) as { type: string; path: string; size: number; oid: string; lfs?: { oid: string; size: number } }[];
      for (const e of page) if (e.type === 'file') out.push({ path: e.path, size: e.size, oid: e.oid, ...(e.lfs ? { lfs: { oid: e.lfs.oid, size: e.lfs.size } } : {}) });
      const next = /<([^>]+)>;\s*rel="next"/.exec(res.headers.get('link') ?? '');
      url = next ? new URL(next[1], url).href : null;
    }
    return out;
  }

  /** HEAD on the resolve URL without following a redirect to another host (huggingface_hub's get_hf_file_metadata). */
  async metadata(commit: string, path: string): Promise<FileMetadata> {
    let url = this.resolveUrl(commit, path);
    for (let hops = 0; ; hops++) {
      const res = await this.request(url, { method: 'HEAD', redirect: 'manual', headers: { 'accept-encoding': 'identity' } });
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        const next = new URL(location, url);
        // A relative redirect (a renamed repo) is followed; one to another host is an LFS file's CDN.
        if (next.origin === new URL(url).origin && hops < 5 && !res.headers.get('x-linked-etag')) {
          url = next.href;
          continue;
        }
        return this.parseMetadata(res, next.href, path);
      }
      if (!res.ok) throw await this.error(res, path);
      return this.parseMetadata(res, url, path);
    }
  }

  private parseMetadata(res: Response, location: string, path: string): FileMetadata {
    const linkedEtag = normalizeEtag(res.headers.get('x-linked-etag'));
    const etag = linkedEtag ?? normalizeEtag(res.headers.get('etag'));
    const size = Number(res.headers.get('x-linked-size') ?? res.headers.get('content-length'));
    if (!etag) throw new HubError('http', `${this.repoId}/${path}: the Hub sent no ETag (is HF_ENDPOINT a Hub?)`);
    if (!Number.isFinite(size)) throw new HubError('http', `${this.repoId}/${path}: the Hub sent no size`);
    return { commit: res.headers.get('x-repo-commit'), etag, size, location, lfs: linkedEtag !== null };
  }

  /** Maps an error answer to what the user should do (huggingface_hub's X-Error-Code values). */
  async error(res: Response, path?: string): Promise<HubError> {
    const code = res.headers.get('x-error-code');
    let detail = res.headers.get('x-error-message') ?? '';
    if (!detail) {
      try {
        const body = (await res.json()) as { error?: unknown };
        if (typeof body.error === 'string') detail = body.error;
      } catch {
        // not JSON
      }
    }
    const what = path ? `${this.repoId}/${path}` : this.repoId;
    if (code === 'GatedRepo' || ((res.status === 401 || res.status === 403) && code !== 'RepoNotFound')) {
      return new HubError(
        'gated',
        this.token
          ? `${this.repoId}: this model is gated (or private) and your token has no access to it (HTTP ${res.status}): accept its licence on ${this.repoUrl} with the account of HF_TOKEN`
          : `${this.repoId}: this model is gated (or private) (HTTP ${res.status}): accept its licence on ${this.repoUrl} and set HF_TOKEN (or run huggingface-cli login)`,
      );
    }
    if (code === 'RepoNotFound' || (res.status === 404 && !code && !path)) {
      const hint = this.token ? '' : '; if it is private or gated, set HF_TOKEN';
      return new HubError('repo-not-found', `Repository not found: ${this.repoId} does not exist on ${this.endpoint} (and is no local folder)${hint}`);
    }
    if (code === 'RevisionNotFound') {
      return new HubError('revision-not-found', `Revision not found: ${this.repoId} has no branch, tag or commit '${this.revision}' (--revision)`);
    }
    if (code === 'EntryNotFound' || res.status === 404) {
      return new HubError('entry-not-found', `${what} not found at revision ${this.revision} on ${this.endpoint}`);
    }
    return new HubError('http', `the Hub answered ${res.status} ${res.statusText} for ${what}${detail ? `: ${detail}` : ''}`);
  }
}
