// The Hub client in-process against the local Hub (fake_hub.ts): errors for gated,
// missing and offline cases, the token file, revisions, --download-dir, a broken
// connection continued with Range, file selection, LLM.create's progress option,
// and (where Python's huggingface_hub is installed) that both read each other's cache.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import type { EngineArgs } from '../../src/config/engine_args.js';
import { LLM } from '../../src/entrypoints/llm.js';
import { type DownloadProgressEvent, HubError, resolveModelFiles, resolveModelPath } from '../../src/hub/index.js';
import type { FakeHub } from './fake_hub.js';
import { checkLayout, freshHome, GATED, removeHomes, sha256, SHARDED, SHARDED_FILES, SINGLE, SINGLE_FILES, startHub, TOKEN } from './helpers.js';

let hub: FakeHub;
let home: string;

before(async () => {
  hub = await startHub();
});

beforeEach(() => {
  home = freshHome();
  for (const k of ['HF_TOKEN', 'HF_HUB_OFFLINE']) delete process.env[k];
  process.env.HF_ENDPOINT = hub.endpoint;
  process.env.HF_HOME = home;
  process.env.HF_HUB_DOWNLOAD_TIMEOUT = '2';
  hub.requests.length = 0;
});

after(async () => {
  await hub.stop();
  removeHomes();
});

const quiet = { progress: false as const };
const cache = () => join(home, 'hub');

async function rejects(p: Promise<unknown>, kind: string, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof HubError, String(e));
    assert.equal(e.kind, kind);
    assert.match(e.message, re);
    return true;
  });
}

test('gated: 401 without a token, 403 with a wrong one; HF_TOKEN and the token file both work, and stay off the LFS host', async () => {
  await rejects(resolveModelPath(GATED, quiet), 'gated', /this model is gated .*HTTP 401.*accept its licence on .*\/kjv\/tiny-llama-gated and set HF_TOKEN/);
  process.env.HF_TOKEN = 'hf_wrong';
  await rejects(resolveModelPath(GATED, quiet), 'gated', /your token has no access to it \(HTTP 403\)/);
  process.env.HF_TOKEN = TOKEN;
  await resolveModelPath(GATED, quiet);
  checkLayout(hub, cache(), GATED, SINGLE_FILES);
  delete process.env.HF_TOKEN;
  rmSync(cache(), { recursive: true });
  writeFileSync(join(home, 'token'), `${TOKEN}\n`);
  hub.requests.length = 0;
  await resolveModelPath(GATED, quiet);
  assert.ok(hub.requests.filter((r) => r.server === 'hub').every((r) => r.authorization === `Bearer ${TOKEN}`));
  assert.ok(hub.requests.filter((r) => r.server === 'cdn').every((r) => r.authorization === undefined));
});

test('a missing repo, a missing revision, a name that is neither a folder nor an id: clear errors, nothing cached', async () => {
  await rejects(resolveModelPath('kjv/nope', quiet), 'repo-not-found', /Repository not found: kjv\/nope does not exist on http:\/\/127\.0\.0\.1:\d+ \(and is no local folder\); if it is private or gated, set HF_TOKEN/);
  await rejects(resolveModelPath(SHARDED, { ...quiet, revision: 'v9' }), 'revision-not-found', /Revision not found: kjv\/tiny-llama-sharded has no branch, tag or commit 'v9'/);
  await assert.rejects(resolveModelPath('models/a/b', quiet), /models\/a\/b: no such model folder, and not a Hugging Face Hub id/);
  assert.ok(!existsSync(join(cache(), 'models--kjv--tiny-llama-sharded', 'refs')));
});

test('offline: the cache only; a clear error naming the missing ref or file, and no request', async () => {
  process.env.HF_HUB_OFFLINE = '1';
  await rejects(resolveModelPath(SHARDED, quiet), 'offline', /HF_HUB_OFFLINE=1 and kjv\/tiny-llama-sharded@main is not in the cache .*refs\/main/);
  delete process.env.HF_HUB_OFFLINE;
  const snap = await resolveModelPath(SHARDED, quiet);
  process.env.HF_HUB_OFFLINE = '1';
  hub.requests.length = 0;
  assert.equal(await resolveModelPath(SHARDED, quiet), snap);
  rmSync(join(snap, 'model-00002-of-00003.safetensors'));
  await rejects(resolveModelPath(SHARDED, quiet), 'offline', /lacks .*snapshots\/[0-9a-f]{40}\/model-00002-of-00003\.safetensors/);
  assert.equal(hub.requests.length, 0);
  // Online again: only the missing shard's blob is linked back (it is still in blobs/, so no byte is fetched).
  delete process.env.HF_HUB_OFFLINE;
  assert.equal(await resolveModelPath(SHARDED, quiet), snap);
  assert.equal(hub.requests.filter((r) => r.server === 'cdn').length, 0);
  checkLayout(hub, cache(), SHARDED, SHARDED_FILES);
});

test('the Hub unreachable: a cached snapshot is used; without one, the error says how to work offline', async () => {
  await resolveModelPath(SINGLE, quiet);
  rmSync(join(cache(), 'models--kjv--tiny-llama', '.no_exist'), { recursive: true });
  process.env.HF_ENDPOINT = 'http://127.0.0.1:9';
  assert.ok(existsSync(join(await resolveModelPath(SINGLE, quiet), 'model.safetensors')));
  await rejects(resolveModelPath(SHARDED, quiet), 'network', /cannot reach the Hub at http:\/\/127\.0\.0\.1:9/);
});

test('a tag resolves to its commit in refs/<tag>; a commit hash needs no ref; --download-dir replaces the cache', async () => {
  const dir = join(home, 'elsewhere');
  await resolveModelPath(SHARDED, { ...quiet, revision: 'v1.0', downloadDir: dir });
  checkLayout(hub, dir, SHARDED, SHARDED_FILES, 'v1.0');
  assert.ok(!existsSync(cache()));
  const commit = hub.commit(SHARDED, 'v1.0');
  hub.requests.length = 0;
  assert.equal(await resolveModelPath(SHARDED, { ...quiet, revision: commit, downloadDir: dir }), join(dir, 'models--kjv--tiny-llama-sharded', 'snapshots', commit));
  assert.deepEqual(hub.requests, []);
});

test('a broken connection is continued with a Range request in the same run, and the sha256 checked', async () => {
  hub.cutNextAfter = 3 << 20;
  await resolveModelPath(SINGLE, quiet);
  assert.deepEqual(hub.requests.filter((r) => r.server === 'cdn').map((r) => r.range ?? null), [null, `bytes=${3 << 20}-`]);
  checkLayout(hub, cache(), SINGLE, SINGLE_FILES);
});

test('a corrupt partial file fails the sha256 check and is discarded', async () => {
  const weights = readFileSync('models/tiny-llama-kjv/model.safetensors');
  const blobs = join(cache(), 'models--kjv--tiny-llama', 'blobs');
  mkdirSync(blobs, { recursive: true });
  writeFileSync(join(blobs, `${sha256(weights)}.incomplete`), Buffer.alloc(1 << 20, 7));
  await rejects(resolveModelPath(SINGLE, quiet), 'integrity', /sha256 [0-9a-f]{64} does not match the Hub's/);
  assert.ok(!existsSync(join(blobs, sha256(weights))));
  await resolveModelPath(SINGLE, quiet);
  checkLayout(hub, cache(), SINGLE, SINGLE_FILES);
});

test('only what is needed: no weights for --load-format dummy; a Hub --tokenizer fetches tokenizer files only', async () => {
  const args = await resolveModelFiles<EngineArgs>({ model: SHARDED, loadFormat: 'dummy', tokenizer: SINGLE }, false);
  assert.deepEqual(readdirSync(args.model).sort(), ['config.json', 'generation_config.json']);
  assert.deepEqual(readdirSync(args.tokenizer!).sort(), ['tokenizer.json', 'tokenizer_config.json']);
  assert.equal(hub.requests.filter((r) => r.server === 'cdn').length, 0);
  assert.equal(args.servedModelName, SHARDED, 'the API still names the model by its id');
  // A folder that exists wins over the Hub.
  const local = await resolveModelFiles({ model: 'models/tiny-llama-kjv' }, false);
  assert.equal(local.model, 'models/tiny-llama-kjv');
});

test('a repo with only .bin weights is refused with a message', async () => {
  const { modelFiles } = await import('./helpers.js');
  const files = modelFiles(false);
  delete files['model.safetensors'];
  hub.addRepo('kjv/bin-only', { files });
  await rejects(resolveModelPath('kjv/bin-only', quiet), 'entry-not-found', /has no \*\.safetensors weights \(only pytorch_model\.bin\): vllm-ts loads safetensors checkpoints only/);
});

test('LLM.create from a Hub id: progress events through downloadProgress, and nothing on stderr', { timeout: 60_000 }, async () => {
  const events: DownloadProgressEvent[] = [];
  const written: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    written.push(String(chunk));
    return write(chunk, ...rest);
  }) as typeof process.stderr.write;
  let llm: LLM;
  try {
    llm = await LLM.create({ model: SHARDED, device: 'cpu', maxModelLen: 128, kvCacheMemoryBytes: 4 << 20, numThreads: 1, useTqdm: false, downloadProgress: (e) => events.push(e) });
  } finally {
    process.stderr.write = write;
  }
  try {
    const [out] = await llm.generate('In the beginning', { temperature: 0, maxTokens: 4 });
    assert.equal(out.outputs[0].tokenIds.length, 4);
    assert.equal(llm.engine.modelConfig.model, join(cache(), 'models--kjv--tiny-llama-sharded', 'snapshots', hub.commit(SHARDED)));
  } finally {
    llm.close();
  }
  assert.ok(!written.some((w) => w.includes('[hub]')), written.join(''));
  const shard = 'model-00001-of-00003.safetensors';
  const mine = events.filter((e) => e.file === shard);
  assert.equal(mine[0].phase, 'start');
  assert.equal(mine.at(-1)!.phase, 'done');
  assert.ok(mine.some((e) => e.phase === 'progress'));
  const size = readFileSync(join(cache(), 'models--kjv--tiny-llama-sharded', 'snapshots', hub.commit(SHARDED), shard)).length;
  assert.equal(mine.at(-1)!.downloadedBytes, size);
  assert.ok(mine.every((e) => e.totalBytes === size));
  assert.deepEqual([...new Set(events.filter((e) => e.phase === 'done').map((e) => e.file))].sort(), [...SHARDED_FILES].sort());
});

/** A Python with huggingface_hub: $HF_HUB_PYTHON, else python3 when it has the package. */
function python(): string | null {
  const py = process.env.HF_HUB_PYTHON || 'python3';
  return spawnSync(py, ['-c', 'import huggingface_hub'], { stdio: 'ignore' }).status === 0 ? py : null;
}

/** Runs Python asynchronously (the local Hub answers from this process's event loop). */
function runPython(args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(python()!, args, { env: { ...process.env, HF_HUB_DISABLE_PROGRESS_BARS: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

test('the cache is the one Python huggingface_hub reads and writes', { timeout: 60_000, skip: python() ? false : 'no Python with huggingface_hub (set HF_HUB_PYTHON)' }, async () => {
  // vllm-ts downloads; Python finds every file offline at the same paths, and scan_cache_dir sees no problem.
  const snap = await resolveModelPath(SHARDED, quiet);
  const script = `
import json, sys
from huggingface_hub import snapshot_download, scan_cache_dir
path = snapshot_download(sys.argv[1], allow_patterns=json.loads(sys.argv[2]), local_files_only=True)
info = scan_cache_dir()
repo = [r for r in info.repos if r.repo_id == sys.argv[1]][0]
print(json.dumps({"path": path, "warnings": [str(w) for w in info.warnings], "files": sorted(f.file_name for rev in repo.revisions for f in rev.files), "refs": sorted(r for rev in repo.revisions for r in rev.refs)}))
`;
  const out = await runPython(['-c', script, SHARDED, JSON.stringify(SHARDED_FILES)], { HF_HUB_OFFLINE: '1' });
  assert.equal(out.status, 0, out.stderr);
  const r = JSON.parse(out.stdout) as { path: string; warnings: string[]; files: string[]; refs: string[] };
  assert.equal(r.path, snap);
  assert.deepEqual(r.warnings, []);
  assert.deepEqual(r.files, [...SHARDED_FILES].sort());
  assert.deepEqual(r.refs, ['main']);

  // Python downloads from the same local Hub; vllm-ts uses it offline, and online fetches no byte of it again.
  const dl = await runPython(['-c', 'import sys; from huggingface_hub import snapshot_download; print(snapshot_download(sys.argv[1]))', SINGLE]);
  assert.equal(dl.status, 0, dl.stderr);
  const pySnap = dl.stdout.trim();
  process.env.HF_HUB_OFFLINE = '1';
  assert.equal(await resolveModelPath(SINGLE, quiet), pySnap);
  delete process.env.HF_HUB_OFFLINE;
  hub.requests.length = 0;
  assert.equal(await resolveModelPath(SINGLE, quiet), pySnap);
  assert.equal(hub.requests.filter((q) => q.server === 'cdn' || q.method === 'GET' && q.url.includes('/resolve/')).length, 0, 'no file fetched again');
});
