// `vllm-ts serve org/name` against a local Hub-compatible server (fake_hub.ts):
// the first start downloads into a temporary HF_HOME in huggingface_hub's layout,
// the second sends no request, offline mode reads the cache only, and gated,
// missing-repo, missing-revision, interrupted and concurrent downloads behave.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnServe, startServe } from '../soak/server_process.js';
import type { FakeHub } from './fake_hub.js';
import { checkLayout, freshHome, GATED, MODEL_DIR, removeHomes, sha256, SHARDED, SHARDED_FILES, SINGLE, SINGLE_FILES, startHub } from './helpers.js';

const SMALL = ['--device', 'cpu', '--num-threads', '1', '--max-model-len', '256', '--kv-cache-memory-bytes', String(4 << 20), '--disable-log-stats'];
let hub: FakeHub;

function env(home: string, extra: Record<string, string> = {}): Record<string, string> {
  return { HF_ENDPOINT: hub.endpoint, HF_HOME: home, HF_HUB_DOWNLOAD_TIMEOUT: '2', ...extra };
}

/** Runs `vllm-ts serve` expected to fail; its exit code and log. */
function serveFails(model: string, e: Record<string, string>, args: string[] = []): Promise<{ code: number | null; log: string }> {
  return new Promise((resolve) => {
    const child = spawnServe(model, ['--host', '127.0.0.1', '--port', '0', ...SMALL, ...args], e);
    let log = '';
    child.stdout!.on('data', (d: Buffer) => (log += d));
    child.stderr!.on('data', (d: Buffer) => (log += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, log });
    });
  });
}

async function completes(base: string, model: string): Promise<string> {
  const res = await fetch(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, prompt: 'In the beginning', max_tokens: 8, temperature: 0 }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  const body = (await res.json()) as { model: string; choices: { text: string }[] };
  assert.equal(body.model, model);
  return body.choices[0].text;
}

before(async () => {
  hub = await startHub();
});

after(async () => {
  await hub.stop();
  removeHomes();
});

test('serve org/name: downloads the needed files into the Hub cache, serves, then starts again with no request; offline too', { timeout: 90_000 }, async () => {
  const home = freshHome();
  hub.requests.length = 0;
  const first = await startServe(SHARDED, SMALL, { env: env(home) });
  let text: string;
  try {
    text = await completes(first.base, SHARDED);
    assert.match(first.stderr(), /Downloaded 8 files .* of kjv\/tiny-llama-sharded@/);
  } finally {
    await first.stop();
  }
  checkLayout(hub, join(home, 'hub'), SHARDED, SHARDED_FILES);
  const cdn = hub.requests.filter((r) => r.server === 'cdn');
  assert.equal(cdn.length, 3, 'one CDN download per shard');
  assert.ok(cdn.every((r) => r.authorization === undefined), 'no token is sent to the LFS host');
  assert.ok(!hub.requests.some((r) => /pytorch_model\.bin|original|README/.test(r.url)), 'other files are never fetched');

  hub.requests.length = 0;
  const second = await startServe(SHARDED, SMALL, { env: env(home) });
  try {
    assert.equal(await completes(second.base, SHARDED), text, 'the cached model generates the same');
    assert.match(second.stderr(), /Using kjv\/tiny-llama-sharded@[0-9a-f]{7} from the cache/);
  } finally {
    await second.stop();
  }
  assert.deepEqual(hub.requests, [], 'a complete cached snapshot needs no request');

  const offline = await startServe(SHARDED, SMALL, { env: env(home, { HF_HUB_OFFLINE: '1', HF_ENDPOINT: 'http://127.0.0.1:9' }) });
  await offline.stop();
  assert.deepEqual(hub.requests, []);

  assert.deepEqual(hub.requests, []);
});

test('a gated repo: the CLI exits non-zero with the message, not a stack trace', { timeout: 60_000 }, async () => {
  const home = freshHome();
  const anon = await serveFails(GATED, env(home));
  assert.notEqual(anon.code, 0);
  assert.match(anon.log, /kjv\/tiny-llama-gated: this model is gated .*HTTP 401.*accept its licence on http:\/\/127\.0\.0\.1:\d+\/kjv\/tiny-llama-gated and set HF_TOKEN/);
  assert.ok(!anon.log.includes('    at '), 'a message, not a stack trace');
});

test('an interrupted download continues from its .incomplete file with a Range request', { timeout: 90_000 }, async () => {
  const home = freshHome();
  // The process is killed mid-file; the next start continues the .incomplete file.
  const home2 = freshHome();
  const blobs = join(home2, 'hub', 'models--kjv--tiny-llama', 'blobs');
  const weights = readFileSync(join(MODEL_DIR, 'model.safetensors'));
  const incomplete = join(blobs, `${sha256(weights)}.incomplete`);
  hub.stallAfter = 5 << 20;
  const child = spawnServe(SINGLE, ['--host', '127.0.0.1', '--port', '0', ...SMALL], env(home2));
  try {
    for (let i = 0; i < 300 && !(existsSync(incomplete) && statSync(incomplete).size >= 5 << 20); i++) await sleep(50);
    assert.equal(statSync(incomplete).size, 5 << 20, 'the partial file holds what arrived');
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    hub.stallAfter = null;
  }
  hub.requests.length = 0;
  const again = await startServe(SINGLE, SMALL, { env: env(home2) });
  await again.stop();
  assert.deepEqual(hub.requests.filter((r) => r.server === 'cdn').map((r) => r.range), [`bytes=${5 << 20}-`]);
  checkLayout(hub, join(home2, 'hub'), SINGLE, SINGLE_FILES);
});

test('two processes starting at once download each blob once (a lock per blob) and both serve', { timeout: 90_000 }, async () => {
  const home = freshHome();
  hub.requests.length = 0;
  hub.chunkDelayMs = 4;
  try {
    const [a, b] = await Promise.all([startServe(SHARDED, SMALL, { env: env(home) }), startServe(SHARDED, SMALL, { env: env(home) })]);
    try {
      assert.equal(await completes(a.base, SHARDED), await completes(b.base, SHARDED));
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  } finally {
    hub.chunkDelayMs = 0;
  }
  const cdn = hub.requests.filter((r) => r.server === 'cdn');
  assert.equal(cdn.length, 3, `each shard fetched once: ${cdn.map((r) => r.url).join(', ')}`);
  checkLayout(hub, join(home, 'hub'), SHARDED, SHARDED_FILES);
});

