// The server when the engine dies, when the waiting queue is full, and when it drains.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, waitFor } from './helpers.js';

const json = { 'content-type': 'application/json' };

/** Reads an SSE response to its end; returns the parsed events (without [DONE]) and whether [DONE] came. */
async function readSse(res: Response, onEvent?: (e: Record<string, unknown>) => void) {
  const events: Record<string, unknown>[] = [];
  let done = false;
  let buf = '';
  const decoder = new TextDecoder();
  for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(part, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = line.replace(/^data: /, '');
      if (data === '[DONE]') done = true;
      else {
        const e = JSON.parse(data) as Record<string, unknown>;
        events.push(e);
        onEvent?.(e);
      }
    }
  }
  return { events, done };
}

test('a crashed engine fails in-flight requests within a second and /health answers 503', { timeout: 60_000 }, async () => {
  const s = await startServer();
  try {
    const body = { prompt: 'And it came to pass', max_tokens: 400, ignore_eos: true, temperature: 0 };
    const streamed = await fetch(`${s.base}/v1/completions`, { method: 'POST', headers: json, body: JSON.stringify({ ...body, stream: true }) });
    const full = fetch(`${s.base}/v1/completions`, { method: 'POST', headers: json, body: JSON.stringify(body) });
    let crashedAt = 0;
    const { events, done } = await readSse(streamed, () => {
      if (crashedAt === 0) {
        crashedAt = performance.now();
        s.engine.crashEngineForTesting();
      }
    });
    const elapsed = performance.now() - crashedAt;
    assert.ok(elapsed < 1000, `the stream ended ${elapsed.toFixed(0)} ms after the crash`);
    const err = events.at(-1)!.error as { code: number; type: string; message: string };
    assert.equal(err.code, 500);
    assert.match(err.message, /engine core/);
    assert.ok(done, 'the stream still ends with [DONE]');
    const fullRes = await full;
    assert.equal(fullRes.status, 500);
    assert.equal(((await fullRes.json()) as { error: { type: string } }).error.type, 'InternalServerError');

    assert.equal((await fetch(`${s.base}/health`)).status, 503);
    assert.equal(s.engine.isHealthy(), false);
    const after = await fetch(`${s.base}/v1/completions`, { method: 'POST', headers: json, body: JSON.stringify({ prompt: 'x' }) });
    assert.equal(after.status, 500);
  } finally {
    await s.server.close();
  }
});

test('beyond --max-waiting-requests: 503 with Retry-After; a drain lets running requests finish', { timeout: 60_000 }, async () => {
  const s = await startServer({}, { maxNumSeqs: 1, maxWaitingRequests: 1 });
  try {
    const body = (n: number) => JSON.stringify({ prompt: 'In the beginning', max_tokens: n, ignore_eos: true, temperature: 0, stream: true });
    const first = await fetch(`${s.base}/v1/completions`, { method: 'POST', headers: json, body: body(300) });
    const reader = readSse(first);
    // Wait until the first request runs, so that the next one is the only one waiting.
    assert.ok(await waitFor(() => s.engine.schedulerStats.numRunningReqs > 0, 10_000), 'the first request runs');
    const second = await fetch(`${s.base}/v1/completions`, { method: 'POST', headers: json, body: body(8) });
    assert.equal(second.status, 200);
    const third = await fetch(`${s.base}/v1/completions`, { method: 'POST', headers: json, body: body(4) });
    assert.equal(third.status, 503);
    assert.ok(Number(third.headers.get('retry-after')) > 0, 'Retry-After is set');
    assert.equal(((await third.json()) as { error: { code: number } }).error.code, 503);

    const drained = s.server.drain(30_000);
    const [a, b] = await Promise.all([reader, readSse(second)]);
    await drained;
    for (const r of [a, b]) {
      assert.ok(r.done);
      const last = r.events.at(-1) as { choices: { finish_reason: string }[] };
      assert.equal(last.choices[0].finish_reason, 'length', 'running requests finish normally during a drain');
    }
    assert.equal(s.engine.numUnfinishedRequests, 0);
  } finally {
    await s.server.close();
  }
});
