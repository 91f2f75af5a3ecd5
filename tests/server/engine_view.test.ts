// GET /engine/events (--enable-engine-view): the stream's shape (a config event,
// then step records), the API key, the 404 without the flag, and the bound: a
// client that never reads loses records instead of queueing them, and neither
// the engine nor the other clients wait for it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import { EngineViewHub } from '../../src/entrypoints/openai/engine_view_hub.js';
import type { EngineViewRecord } from '../../src/core/engine_view.js';
import { readFileSync } from 'node:fs';
import { startServe } from '../soak/server_process.js';
import { startServer, waitFor } from './helpers.js';

const KEY = 'engine-view-key';

/** Reads server-sent events from a fetch response until `enough` says stop. */
async function readEvents(res: Response, enough: (events: { event: string; data: unknown }[]) => boolean): Promise<{ event: string; data: unknown }[]> {
  const events: { event: string; data: unknown }[] = [];
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  while (!enough(events)) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (data !== undefined) events.push({ event, data: JSON.parse(data) });
    }
  }
  await reader.cancel();
  return events;
}

const complete = (base: string, prompt: string, maxTokens: number) =>
  fetch(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ model: 'models/tiny-llama-kjv', prompt, max_tokens: maxTokens, ignore_eos: true, temperature: 0 }),
  }).then(async (r) => {
    assert.equal(r.status, 200);
    return (await r.json()) as { usage: { completion_tokens: number } };
  });

test('the stream: the key, a config event, then records of the steps that ran', { timeout: 60_000 }, async () => {
  const s = await startServer({ apiKeys: [KEY] }, { enableEngineView: true });
  try {
    assert.equal((await fetch(`${s.base}/engine/events`)).status, 401);
    const res = await fetch(`${s.base}/engine/events`, { headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const reading = readEvents(res, (ev) => ev.some((e) => e.event === 'step' && (e.data as EngineViewRecord).idle));
    await waitFor(() => s.server.engineView!.numClients === 1);
    const [a, b] = await Promise.all([complete(s.base, 'In the beginning', 24), complete(s.base, 'And God said', 24)]);
    assert.equal(a.usage.completion_tokens + b.usage.completion_tokens, 48);
    const events = await reading;
    assert.equal(events[0].event, 'config');
    assert.deepEqual(events[0].data, {
      model: 'models/tiny-llama-kjv',
      blockSize: 16,
      numBlocks: s.engine.cacheConfig.numBlocks - 1,
      maxNumSeqs: 16,
      maxNumBatchedTokens: 2048,
      maxModelLen: 512,
      enablePrefixCaching: true,
    });
    const steps = events.slice(1).map((e) => e.data as EngineViewRecord);
    assert.ok(steps.length >= 2);
    const last = steps.at(-1)!;
    assert.equal(last.idle, true);
    assert.equal(last.kv.counts[2] + last.kv.counts[3] + last.kv.counts[4], 0, 'nothing held once idle');
    // Every step is counted once across the records, and both requests were admitted and finished.
    assert.equal(steps.reduce((n, r) => n + r.numSteps, 0), last.step);
    assert.equal(steps.reduce((n, r) => n + r.admitted.count, 0), 2);
    assert.equal(steps.reduce((n, r) => n + r.finished.count, 0), 2);
  } finally {
    await s.server.close();
  }
});

test('without --enable-engine-view: no route (404), no hub, no records in the stats', { timeout: 60_000 }, async () => {
  const s = await startServer();
  try {
    assert.equal((await fetch(`${s.base}/engine/events`)).status, 404);
    assert.equal(s.server.engineView, null);
    await complete(s.base, 'In the beginning', 4);
    assert.equal(s.engine.schedulerStats.engineView, undefined);
    assert.equal((await fetch(`${s.base}/engine`)).status, 200, 'the page itself says how to turn the view on');
  } finally {
    await s.server.close();
  }
});

/** A response whose client never reads: nothing it is given is ever flushed. */
function stalledResponse(): ServerResponse {
  const w = new Writable({ write: () => undefined }) as Writable & { writeHead(): void };
  w.writeHead = () => undefined;
  return w as unknown as ServerResponse;
}

function drainingResponse(): ServerResponse & { text: string } {
  const w = new Writable({
    write(chunk, _enc, cb) {
      w.text += String(chunk);
      cb();
    },
  }) as Writable & { writeHead(): void; text: string };
  w.text = '';
  w.writeHead = () => undefined;
  return w as unknown as ServerResponse & { text: string };
}

test('a client that never reads: records are dropped for it past the bound, the others get every one', () => {
  const hub = new EngineViewHub(
    { model: 'm', blockSize: 16, numBlocks: 100, maxNumSeqs: 4, maxNumBatchedTokens: 64, maxModelLen: 128, enablePrefixCaching: true },
    { ringSize: 8, maxBufferedBytes: 8 * 1024 },
  );
  const stalled = stalledResponse();
  const fast = drainingResponse();
  hub.attach(stalled);
  hub.attach(fast);
  const record = (step: number) => ({ step, idle: false, padding: 'x'.repeat(500) }) as unknown as EngineViewRecord;
  for (let i = 1; i <= 1000; i++) assert.equal(hub.publish(record(i)), undefined, 'publish returns at once');
  const [slow, ok] = hub.clientStats();
  assert.ok(slow.bufferedBytes <= 8 * 1024 + 600, `${slow.bufferedBytes} bytes held for the stalled client`);
  assert.ok(slow.sent < 20 && slow.dropped > 980, JSON.stringify(slow));
  assert.equal(slow.sent + slow.dropped, 1000);
  assert.deepEqual([ok.sent, ok.dropped], [1000, 0]);
  assert.equal(fast.text.match(/^event: step$/gm)!.length, 1000);
  // A client that connects now gets the config and the last ringSize records only.
  const late = drainingResponse();
  hub.attach(late);
  const steps = [...late.text.matchAll(/"step":(\d+)/g)].map((m) => Number(m[1]));
  assert.deepEqual(steps, [993, 994, 995, 996, 997, 998, 999, 1000]);
  hub.close();
  assert.equal(hub.numClients, 0);
});

test('a real client that never reads does not hold up the engine or another client', { timeout: 60_000 }, async () => {
  const s = await startServer({ apiKeys: [KEY] }, { enableEngineView: true });
  const port = Number(new URL(s.base).port);
  const sock = connect(port, '127.0.0.1');
  try {
    await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
    sock.write(`GET /engine/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\n\r\n`);
    sock.pause(); // and never reads
    await waitFor(() => s.server.engineView!.numClients === 1);
    const res = await fetch(`${s.base}/engine/events`, { headers: { authorization: `Bearer ${KEY}` } });
    const reading = readEvents(res, (ev) => ev.some((e) => e.event === 'step' && (e.data as EngineViewRecord).idle));
    const outs = await Promise.all([0, 1, 2, 3].map((i) => complete(s.base, `Verse ${i}: and it was so`, 48)));
    assert.deepEqual(outs.map((o) => o.usage.completion_tokens), [48, 48, 48, 48]);
    const events = await reading;
    const hub = s.server.engineView!;
    assert.equal((events.at(-1)!.data as EngineViewRecord).step, hub.lastRecord!.step, 'the reading client is up to date');
    for (const c of hub.clientStats()) assert.ok(c.bufferedBytes <= 64 * 1024 + JSON.stringify(hub.lastRecord).length + 64, JSON.stringify(c));
  } finally {
    sock.destroy();
    await s.server.close();
  }
});

test("npm start's serve flags turn the view on: the startup line names the page, the stream answers with the key", { timeout: 90_000 }, async () => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } };
  const [, , command, model, ...flags] = pkg.scripts.start.split(' ');
  assert.equal(command, 'serve');
  const s = await startServe(model, [...flags, '--api-key', KEY, '--num-threads', '1', '--max-model-len', '256']);
  try {
    assert.match(s.stderr(), /Engine view: http:\/\/127\.0\.0\.1:\d+\/engine/);
    assert.equal((await fetch(`${s.base}/engine/events`)).status, 401);
    const res = await fetch(`${s.base}/engine/events`, { headers: { authorization: `Bearer ${KEY}` } });
    const [config] = await readEvents(res, (ev) => ev.length > 0);
    assert.equal(config.event, 'config');
  } finally {
    await s.stop();
  }
});
