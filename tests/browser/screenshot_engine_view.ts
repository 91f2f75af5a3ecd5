// Takes docs/engine-view.png, the engine view shown in the README: `vllm-ts serve`
// over the tiny model with npm start's flags (--enable-engine-view, a 64 MiB KV
// cache), in the middle of a burst of chat requests sent from the page itself,
// half of them sharing a system prompt.
// Run: node --import tsx tests/browser/screenshot_engine_view.ts
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, ROOT, serve, stop } from './harness.js';

const OUT = join(ROOT, 'docs', 'engine-view.png');
const start = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start.split(' ');
const [model, ...flags] = start.slice(start.indexOf('serve') + 1);
const server = await serve(model, [...flags, '--num-threads', '1', '--device', 'cpu', '--disable-log-stats', '--served-model-name', 'tiny-llama-kjv']);
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  await page.goto(`${server.base}/engine`);
  await page.getByTestId('status').filter({ hasText: 'live' }).waitFor();
  await page.getByTestId('burst-n').fill('5');
  await page.getByTestId('burst-max-tokens').fill('700');
  await page.getByTestId('send-burst').click();
  // A moment when the batch holds every request, past its prefills, and the shared prompt's blocks are drawn.
  const ready = new Function(`return (() => {
    const n = (id) => Number(document.querySelector('[data-testid=' + id + ']').textContent);
    const rows = [...document.querySelectorAll('[data-testid=scheduled-tokens]')].map((td) => Number(td.textContent));
    return rows.length === 5 && rows.every((t) => t === 1) && n('kv-count-shared') > 0 && n('total-steps') > 320;
  })();`) as () => boolean;
  await page.waitForFunction(ready, undefined, { timeout: 120_000 });
  await page.getByTestId('pause').click();
  await page.mouse.move(0, 0);
  await page.screenshot({ path: OUT });
  console.log(`${OUT}: ${statSync(OUT).size} bytes`);
} finally {
  await browser.close();
  await stop(server.proc);
}
