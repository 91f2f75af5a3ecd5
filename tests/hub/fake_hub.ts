// A test-only Hugging Face Hub on 127.0.0.1: the endpoints huggingface_hub and
// vllm-ts use (repo info at a revision, the recursive tree with Link pagination,
// HEAD/GET resolve with ETag / X-Repo-Commit, X-Error-Code errors, gated repos),
// with LFS files answered by a 302 to a second server (the "CDN": another port,
// named localhost)
// that sends X-Linked-Etag / X-Linked-Size upstream and honours Range. It records
// every request, and can cut, stall or slow the CDN to test resumes and locks.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RepoSpec {
  /** path -> content */
  files: Record<string, Buffer>;
  /** branch or tag -> the content it points at is the same; only the commit ids differ */
  revisions?: string[];
  /** When set, only this token may read it (401 without a token, 403 with another). */
  gatedToken?: string;
}

interface Repo extends RepoSpec {
  commits: Map<string, string>;
}

export interface RecordedRequest {
  server: 'hub' | 'cdn';
  method: string;
  url: string;
  range?: string;
  authorization?: string;
}

const gitOid = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const isLfs = (path: string) => path.endsWith('.safetensors');

export class FakeHub {
  readonly requests: RecordedRequest[] = [];
  private readonly repos = new Map<string, Repo>();
  private readonly blobs = new Map<string, Buffer>();
  private hub!: Server;
  private cdn!: Server;
  /** Entries per tree page (the Link header leads to the next). */
  treePageSize = 4;
  /** CDN: destroy the next GET's socket after this many bytes. */
  cutNextAfter: number | null = null;
  /** CDN: send this many bytes of every GET, then nothing (until the client goes away). */
  stallAfter: number | null = null;
  /** CDN: wait this long between 64 KiB chunks. */
  chunkDelayMs = 0;

  endpoint = '';
  private cdnBase = '';

  addRepo(id: string, spec: RepoSpec): void {
    const commits = new Map<string, string>();
    for (const rev of ['main', ...(spec.revisions ?? [])]) commits.set(rev, createHash('sha1').update(`${id}@${rev}`).digest('hex'));
    for (const [path, b] of Object.entries(spec.files)) if (isLfs(path)) this.blobs.set(sha256(b), b);
    this.repos.set(id, { ...spec, commits });
  }

  commit(id: string, rev = 'main'): string {
    return this.repos.get(id)!.commits.get(rev)!;
  }

  async start(): Promise<void> {
    this.hub = createServer((req, res) => this.onHub(req, res));
    this.cdn = createServer((req, res) => this.onCdn(req, res));
    const listen = (s: Server) => new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port)));
    this.endpoint = `http://127.0.0.1:${await listen(this.hub)}`;
    // Another host name for the same loopback address: huggingface_hub follows
    // redirects to the same host name and stops at one to another host (the CDN).
    this.cdnBase = `http://localhost:${await listen(this.cdn)}`;
  }

  async stop(): Promise<void> {
    for (const s of [this.hub, this.cdn]) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  }

  private record(server: 'hub' | 'cdn', req: IncomingMessage): void {
    this.requests.push({ server, method: req.method!, url: req.url!, range: req.headers.range, authorization: req.headers.authorization });
  }

  private fail(res: ServerResponse, status: number, code: string, message: string): void {
    res.writeHead(status, { 'content-type': 'application/json', 'x-error-code': code, 'x-error-message': message });
    res.end(JSON.stringify({ error: message }));
  }

  /** The repo, or null after answering the error the Hub would. */
  private access(req: IncomingMessage, res: ServerResponse, id: string): Repo | null {
    const repo = this.repos.get(id);
    const auth = req.headers.authorization;
    if (!repo) {
      // The real Hub answers 401 to anonymous requests for repos that do not exist.
      this.fail(res, auth ? 404 : 401, 'RepoNotFound', 'Repository not found');
      return null;
    }
    if (repo.gatedToken !== undefined && auth !== `Bearer ${repo.gatedToken}`) {
      this.fail(res, auth ? 403 : 401, 'GatedRepo', `Access to model ${id} is restricted. You must have access to it and be authenticated to access it. Please log in.`);
      return null;
    }
    return repo;
  }

  private onHub(req: IncomingMessage, res: ServerResponse): void {
    this.record('hub', req);
    const url = new URL(req.url!, this.endpoint);
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if (parts[0] === 'api' && parts[1] === 'models' && (parts[4] === 'revision' || parts[4] === 'tree')) {
      const id = `${parts[2]}/${parts[3]}`;
      const rev = parts.slice(5).join('/');
      const repo = this.access(req, res, id);
      if (!repo) return;
      const commit = repo.commits.get(rev) ?? ([...repo.commits.values()].includes(rev) ? rev : undefined);
      if (!commit) return this.fail(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      res.setHeader('content-type', 'application/json');
      if (parts[4] === 'revision') {
        res.end(JSON.stringify({ id, sha: commit, siblings: Object.keys(repo.files).map((rfilename) => ({ rfilename })), gated: repo.gatedToken ? 'auto' : false }));
        return;
      }
      const all = Object.entries(repo.files).map(([path, b]) => ({
        type: 'file',
        path,
        size: b.length,
        oid: gitOid(b),
        ...(isLfs(path) ? { lfs: { oid: sha256(b), size: b.length, pointerSize: 134 } } : {}),
      }));
      const cursor = Number(url.searchParams.get('cursor') ?? 0);
      const page = all.slice(cursor, cursor + this.treePageSize);
      if (cursor + this.treePageSize < all.length) {
        const next = new URL(url);
        next.searchParams.set('cursor', String(cursor + this.treePageSize));
        res.setHeader('link', `<${next.href}>; rel="next"`);
      }
      res.end(JSON.stringify(page));
      return;
    }
    const at = parts.indexOf('resolve');
    if (at === 2 && (req.method === 'HEAD' || req.method === 'GET')) {
      const id = `${parts[0]}/${parts[1]}`;
      const repo = this.access(req, res, id);
      if (!repo) return;
      const rev = parts[3];
      const commit = repo.commits.get(rev) ?? ([...repo.commits.values()].includes(rev) ? rev : undefined);
      if (!commit) return this.fail(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      const path = parts.slice(4).join('/');
      const body = repo.files[path];
      if (!body) return this.fail(res, 404, 'EntryNotFound', `${path} does not exist on "${rev}"`);
      if (isLfs(path)) {
        const oid = sha256(body);
        res.writeHead(302, {
          location: `${this.cdnBase}/lfs/${oid}?signature=test`,
          'x-repo-commit': commit,
          'x-linked-etag': `"${oid}"`,
          'x-linked-size': String(body.length),
          etag: `"${gitOid(Buffer.from(`pointer ${oid}`))}"`,
          'content-length': '0',
        });
        res.end();
        return;
      }
      res.writeHead(200, { etag: `"${gitOid(body)}"`, 'x-repo-commit': commit, 'content-length': String(body.length), 'accept-ranges': 'bytes' });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    this.fail(res, 404, 'NotFound', `no route ${req.method} ${url.pathname}`);
  }

  private onCdn(req: IncomingMessage, res: ServerResponse): void {
    this.record('cdn', req);
    const m = /^\/lfs\/([0-9a-f]{64})/.exec(req.url!);
    const blob = m ? this.blobs.get(m[1]) : undefined;
    if (!blob) {
      res.writeHead(404);
      res.end();
      return;
    }
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      if (start >= blob.length) {
        res.writeHead(416, { 'content-range': `bytes */${blob.length}` });
        res.end();
        return;
      }
      res.writeHead(206, { 'content-length': String(blob.length - start), 'content-range': `bytes ${start}-${blob.length - 1}/${blob.length}` });
    } else {
      res.writeHead(200, { 'content-length': String(blob.length), 'accept-ranges': 'bytes', etag: `"${m![1]}"` });
    }
    const cut = this.cutNextAfter;
    this.cutNextAfter = null;
    const limit = this.stallAfter;
    void (async () => {
      let sent = 0;
      for (let off = start; off < blob.length; off += 1 << 16) {
        if (res.destroyed) return;
        const chunk = blob.subarray(off, Math.min(off + (1 << 16), blob.length));
        if (cut !== null && sent + chunk.length > cut) {
          res.write(chunk.subarray(0, cut - sent));
          await new Promise((r) => setTimeout(r, 20));
          res.destroy();
          return;
        }
        if (limit !== null && sent + chunk.length > limit) {
          res.write(chunk.subarray(0, limit - sent));
          return; // stalls: the client times out or is killed
        }
        if (!res.write(chunk)) await new Promise((r) => res.once('drain', r));
        sent += chunk.length;
        if (this.chunkDelayMs) await new Promise((r) => setTimeout(r, this.chunkDelayMs));
      }
      res.end();
    })();
  }
}

/** Splits a .safetensors file into `n` shards plus model.safetensors.index.json (tensor data copied as is). */
export function shardSafetensors(file: Buffer, n: number): Record<string, Buffer> {
  const headerLen = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + headerLen).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const data = file.subarray(8 + headerLen);
  const names = Object.keys(header).filter((k) => k !== '__metadata__').sort();
  const out: Record<string, Buffer> = {};
  const weightMap: Record<string, string> = {};
  const per = Math.ceil(names.length / n);
  let total = 0;
  for (let s = 0; s < n; s++) {
    const shardName = `model-${String(s + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
    const h: Record<string, unknown> = {};
    const parts: Buffer[] = [];
    let off = 0;
    for (const name of names.slice(s * per, (s + 1) * per)) {
      const t = header[name];
      const bytes = data.subarray(t.data_offsets[0], t.data_offsets[1]);
      h[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + bytes.length] };
      parts.push(bytes);
      off += bytes.length;
      weightMap[name] = shardName;
    }
    let json = Buffer.from(JSON.stringify(h));
    json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    out[shardName] = Buffer.concat([len, json, ...parts]);
    total += off;
  }
  out['model.safetensors.index.json'] = Buffer.from(JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  return out;
}
