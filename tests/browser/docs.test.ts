// GET /docs in Debian's headless chromium (playwright-core): the page renders every
// route of /openapi.json and the fields of each request body, under the server's
// Content-Security-Policy, fetching nothing but the server's own openapi.json (also
// under --root-path).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { startServer, type TestServer } from '../server/helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const skip =
  !existsSync(CHROMIUM) && !process.env.CI
    ? `${CHROMIUM} is missing: install it (apt-get install chromium) to run the browser test; CI always runs it`
    : false;

let s: TestServer;
let browser: Browser;

before(async () => {
  if (skip) return;
  s = await startServer({ rootPath: '/gw' });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
});

after(async () => {
  if (skip) return;
  await browser.close();
  await s.server.close();
});

test('/docs lists every documented route and the request fields, from the server alone', { skip, timeout: 60_000 }, async () => {
  const page = await browser.newPage();
  const requested: string[] = [];
  const problems: string[] = [];
  page.on('request', (r) => requested.push(r.url()));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(`${s.base}/gw/docs`);
  await page.waitForSelector('details');
  const doc = (await (await fetch(`${s.base}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
  const expected = Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`));
  const shown = await page.$$eval('summary', (els) => els.map((e) => e.textContent!.replace(/\s+/g, ' ').trim()));
  assert.equal(shown.length, expected.length);
  for (const e of expected) assert.ok(shown.some((t) => t.startsWith(e)), `${e} is on the page`);

  const completions = page.locator('details', { hasText: 'POST /v1/completions' });
  await completions.locator('summary').click();
  const fields = await completions.locator('td:first-child').allTextContents();
  for (const f of ['prompt', 'max_tokens', 'truncate_prompt_tokens', 'truncation_side', 'return_token_ids']) assert.ok(fields.includes(f), `${f} is listed`);
  const chatRequired = await page.locator('details', { hasText: 'POST /v1/chat/completions' }).locator('tr', { hasText: 'messages' }).first().textContent();
  assert.match(chatRequired ?? '', /required/);
  assert.match(await page.locator('#title').textContent() ?? '', /vllm-ts/);

  assert.deepEqual(problems, [], 'no script or CSP errors');
  const origin = new URL(s.base).origin;
  assert.ok(requested.length >= 2 && requested.every((u) => u.startsWith(origin)), `only the server: ${requested.join(', ')}`);
  assert.ok(requested.includes(`${origin}/gw/openapi.json`), 'openapi.json under the root path');
});
