// The engine view (GET /engine) in Debian's headless chromium (playwright-core),
// over a real server on the tiny model with --enable-engine-view and an API key:
// the page asks for the key, then a burst of chat requests sent from the page shows
// several requests in one step's batch and a prefix-cache hit (the shared system
// prompt's blocks drawn as shared / hit). Without the flag the page says the view
// is off. Screenshots go to tests/browser/artifacts/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startServer, type TestServer } from '../server/helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url));
const KEY = 'engine-view-test-key';
const skip =
  !existsSync(CHROMIUM) && !process.env.CI
    ? `${CHROMIUM} is missing: install it (apt-get install chromium) to run the browser test; CI always runs it`
    : false;

let browser: Browser;
before(async () => {
  if (skip) return;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
});
after(async () => {
  if (!skip) await browser.close();
});

/** A page that records script errors, CSP violations and every URL it asks for. */
async function openPage(): Promise<{ page: Page; problems: string[]; requested: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems: string[] = [];
  const requested: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && !/401|Unauthorized/.test(m.text())) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('request', (r) => requested.push(r.url()));
  return { page, problems, requested };
}

/**
 * An in-page function from its source (this project type-checks without the DOM library). NOTE: a
 * function, not a string: playwright evaluates a string predicate with eval, which the page's CSP forbids.
 */
const inPage = (expr: string) => new Function(`return (${expr});`) as () => unknown;

// In-page reading of what the view shows now (as text: this project type-checks without the DOM library).
// It waits for a drawn step with at least two requests in its batch and blocks shared or hit in the prefix cache.
const SHOWS_BATCH_AND_HIT = `(() => {
  const num = (id) => Number(document.querySelector('[data-testid=' + id + ']').textContent);
  const rows = [...document.querySelectorAll('[data-testid=running-row]')].map((tr) => ({
    name: tr.cells[0].textContent,
    tokens: Number(tr.querySelector('[data-testid=scheduled-tokens]').textContent),
    hit: tr.querySelector('[data-testid=prefix-hit]').textContent,
  }));
  const inBatch = rows.filter((r) => r.tokens > 0);
  const shared = num('kv-count-shared');
  const prefixHit = num('kv-count-prefix_hit');
  if (inBatch.length < 2 || shared + prefixHit === 0) return null;
  return { step: num('step-no'), rows, shared, prefixHit, used: num('kv-count-used'), budget: document.querySelector('[data-testid=budget-text]').textContent };
})()`;

test('the engine view: the key, then a burst from the page shows continuous batching and a prefix-cache hit', { skip, timeout: 90_000 }, async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const s: TestServer = await startServer({ apiKeys: [KEY] }, { enableEngineView: true, kvCacheMemoryBytes: 16 << 20 });
  const { page, problems, requested } = await openPage();
  try {
    const res = await fetch(`${s.base}/engine`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self'; style-src 'self'/);
    assert.equal((await fetch(`${s.base}/engine/events`)).status, 401, 'the stream needs the key');

    await page.goto(`${s.base}/engine`);
    await page.getByTestId('api-key-panel').waitFor({ state: 'visible' });
    assert.equal(await page.getByTestId('status').innerText(), 'needs an API key');
    await page.getByTestId('api-key-input').fill(KEY);
    await page.getByTestId('api-key-save').click();
    await page.waitForFunction(inPage(`document.querySelector('[data-testid=status]').textContent === 'live'`));
    assert.match(await page.getByTestId('config').innerText(), /block_size 16 · 127 blocks/);

    await page.getByTestId('burst-n').fill('4');
    await page.getByTestId('burst-max-tokens').fill('160');
    await page.getByTestId('send-burst').click();
    // Counted, not timed: the view has to draw one step holding two or more requests while shared or hit blocks are drawn.
    const shown = (await (await page.waitForFunction(inPage(SHOWS_BATCH_AND_HIT), undefined, { timeout: 60_000 })).jsonValue()) as {
      step: number;
      rows: { name: string; tokens: number; hit: string }[];
      shared: number;
      prefixHit: number;
      used: number;
      budget: string;
    };
    assert.ok(shown.rows.filter((r) => r.tokens > 0).length >= 2, JSON.stringify(shown));
    assert.match(shown.budget, /^[2-4] requests in this step's batch/);
    // The second request with the long system prompt found its blocks in the cache: 10 blocks of 16 of the ~210-token prompt.
    const sharers = shown.rows.filter((r) => r.name.endsWith('-shared'));
    assert.ok(sharers.some((r) => /^\d+ tokens \(\d+ blocks\)$/.test(r.hit)), JSON.stringify(sharers));
    assert.ok(shown.shared + shown.prefixHit >= 10, `${shown.shared} shared + ${shown.prefixHit} hit blocks`);
    await page.screenshot({ path: join(ARTIFACTS, 'engine-view.png') });

    await page.waitForFunction(inPage(`/4 done/.test(document.querySelector('[data-testid=burst-status]').textContent)`), undefined, { timeout: 60_000 });
    assert.ok(Number(await page.getByTestId('peak-batch').innerText()) >= 2);
    assert.match(await page.getByTestId('hit-rate').innerText(), /^\d+\.\d%$/);
    assert.ok(Number(await page.getByTestId('hit-rate').innerText().then((t) => t.slice(0, -1))) > 0);
    // Going back in time: Pause, then ◀ shows an older step.
    const note = (re: string) => page.waitForFunction(inPage(`/${re}/.test(document.querySelector('[data-testid=step-note]').textContent)`));
    await page.getByTestId('pause').click();
    await note('paused \\(0 newer\\)');
    const paused = Number(await page.getByTestId('step-no').innerText());
    await page.getByTestId('prev').click();
    await note('paused \\(1 newer\\)');
    assert.ok(Number(await page.getByTestId('step-no').innerText()) < paused);

    assert.deepEqual(problems, [], 'no script or CSP errors');
    const origin = new URL(s.base).origin;
    assert.ok(requested.every((u) => u.startsWith(origin)), `only the server: ${requested.join(', ')}`);
  } finally {
    await page.close();
    await s.server.close();
  }
});

test('without --enable-engine-view the page (linked from the playground) says the view is off and the stream is a 404', { skip, timeout: 60_000 }, async () => {
  const s = await startServer();
  const { page, problems } = await openPage();
  try {
    assert.equal((await fetch(`${s.base}/engine/events`)).status, 404);
    assert.equal(s.server.engineView, null);
    // From the playground's header, as a user gets there.
    await page.goto(`${s.base}/playground`);
    await page.getByTestId('nav-engine').click();
    await page.waitForURL(`${s.base}/engine`);
    await page.getByTestId('view-off').waitFor({ state: 'visible' });
    assert.match(await page.getByTestId('view-off').innerText(), /--enable-engine-view/);
    assert.equal(await page.getByTestId('status').innerText(), 'engine view off');
    assert.deepEqual(problems.filter((p) => !/404/.test(p)), []);
  } finally {
    await page.close();
    await s.server.close();
  }
});
