// Faults and shutdown of `vllm-ts serve` as a real child process: SIGTERM while
// requests run (they finish, new ones get 503, exit 0), and a model folder with
// corrupt weights (startup fails naming the file, non-zero exit).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, openSync, rmSync, truncateSync, writeSync, closeSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnServe, startServe } from '../soak/server_process.js';
import { MODEL } from './helpers.js';

const SMALL = ['--device', 'cpu', '--num-threads', '1', '--max-model-len', '512', '--kv-cache-memory-bytes', String(8 << 20)];

interface StreamResult {
  events: Record<string, unknown>[];
  done: boolean;
  endedAt: number;
}

/** A streamed completion on its own connection; `onFirst` fires at its first event. */
function stream(base: string, body: object, onFirst: () => void): Promise<StreamResult> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, agent: false });
    req.on('error', reject);
    req.on('response', (res) => {
      assert.equal(res.statusCode, 200);
      const events: Record<string, unknown>[] = [];
      let done = false;
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        buf += d;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const data = buf.slice(0, i).replace(/^data: /, '');
          buf = buf.slice(i + 2);
          if (data === '[DONE]') done = true;
          else {
            events.push(JSON.parse(data) as Record<string, unknown>);
            if (events.length === 1) onFirst();
          }
        }
      });
      res.on('end', () => resolve({ events, done, endedAt: performance.now() }));
      res.on('error', reject);
    });
    req.end(JSON.stringify({ ...body, stream: true }));
  });
}

test('SIGTERM while requests run: they finish, new requests and /health get 503, the process exits 0', { timeout: 120_000 }, async () => {
  const s = await startServe(MODEL, [...SMALL, '--shutdown-timeout', '60']);
  try {
    const maxTokens = 400;
    const body = { prompt: 'And God said, Let there be light', max_tokens: maxTokens, ignore_eos: true, temperature: 0 };
    let started = 0;
    let allStarted!: () => void;
    const running = new Promise<void>((r) => (allStarted = r));
    const streams = Array.from({ length: 6 }, () => stream(s.base, body, () => ++started === 6 && allStarted()));
    await running;

    s.child.kill('SIGTERM');
    const sentAt = performance.now();
    // The drain is under way once the server says so; the listener stays open.
    while (!s.stderr().includes('SIGTERM: draining')) await new Promise((r) => setTimeout(r, 5));
    const refused = await fetch(`${s.base}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'x', max_tokens: 1 }),
    });
    const refusedAt = performance.now();
    assert.equal(refused.status, 503, 'a new request during the drain is refused');
    assert.ok(Number(refused.headers.get('retry-after')) > 0, 'with Retry-After');
    const err = ((await refused.json()) as { error: { code: number; message: string } }).error;
    assert.equal(err.code, 503);
    assert.match(err.message, /shutting down/);
    assert.equal((await fetch(`${s.base}/health`)).status, 503, '/health says 503 while draining');

    const results = await Promise.all(streams);
    for (const r of results) {
      assert.ok(r.done, 'the stream ends with [DONE]');
      const text = r.events.map((e) => (e.choices as { text: string }[])[0]?.text ?? '').join('');
      const last = r.events.at(-1) as { choices: { finish_reason: string | null }[]; error?: unknown };
      assert.equal(last.error, undefined);
      assert.equal(last.choices[0].finish_reason, 'length', 'a running request finishes normally');
      assert.ok(text.length > 0);
      assert.ok(r.endedAt > refusedAt, 'the refusal came while the running requests were still generating');
    }
    const code = await s.exited;
    assert.equal(code, 0, `exit code (log:\n${s.stderr()})`);
    assert.match(s.stderr(), /Shutdown complete/);
    assert.ok(performance.now() - sentAt < 60_000);
  } finally {
    await s.stop(5000);
  }
});

test('SIGTERM on an idle server exits 0 at once; the port is closed afterwards', { timeout: 60_000 }, async () => {
  const s = await startServe(MODEL, SMALL);
  const t0 = performance.now();
  s.child.kill('SIGTERM');
  assert.equal(await s.exited, 0);
  assert.ok(performance.now() - t0 < 5000, `exited in ${(performance.now() - t0).toFixed(0)} ms`);
  await assert.rejects(fetch(`${s.base}/health`), 'nothing listens any more');
});

/** Runs `vllm-ts serve` on a model folder that is expected to fail; returns its exit code and log. */
function serveFails(model: string): Promise<{ code: number | null; log: string }> {
  return new Promise((resolve) => {
    const child = spawnServe(model, ['--host', '127.0.0.1', '--port', '0', ...SMALL]);
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

test('corrupt weights fail at startup with a message naming the file, and a non-zero exit', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vllm-ts-corrupt-'));
  try {
    const model = join(dir, 'tiny-llama-kjv');
    cpSync(MODEL, model, { recursive: true });
    const weights = join(model, 'model.safetensors');
    const size = statSync(weights).size;

    truncateSync(weights, Math.floor(size / 2));
    const truncated = await serveFails(model);
    assert.notEqual(truncated.code, 0, 'a truncated file is a failed start');
    assert.notEqual(truncated.code, null, 'it exits by itself rather than hanging');
    assert.ok(truncated.log.includes(weights), `the message names ${weights}:\n${truncated.log}`);
    assert.match(truncated.log, /truncated/);
    assert.doesNotMatch(truncated.log, /Application startup complete/);

    // A header whose length field is garbage.
    cpSync(join(MODEL, 'model.safetensors'), weights);
    const fd = openSync(weights, 'r+');
    writeSync(fd, Buffer.alloc(8, 0xff), 0, 8, 0);
    closeSync(fd);
    const garbage = await serveFails(model);
    assert.notEqual(garbage.code, 0);
    assert.notEqual(garbage.code, null);
    assert.ok(garbage.log.includes(weights), `the message names ${weights}:\n${garbage.log}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
