// Takes docs/playground.png, the chat view shown in the README: `vllm-ts serve` over
// the tiny model, a message with markdown and code, a real answer, then an answer
// with token probabilities and one token's alternatives open.
// Run: node --import tsx tests/browser/screenshot.ts
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, ROOT, serve, stop, until } from './harness.js';

const OUT = join(ROOT, 'docs', 'playground.png');

async function send(page: Page, text: string): Promise<void> {
  const n = await page.getByTestId('message-stats').count();
  await page.getByLabel('Message', { exact: true }).fill(text);
  await page.getByLabel('Message', { exact: true }).press('Enter');
  await until('the answer', async () => (await page.getByTestId('message-stats').count()) === n + 1, 30_000);
}

const server = await serve('models/tiny-llama-kjv', ['--num-threads', '1', '--device', 'cpu', '--disable-log-stats']);
const dir = mkdtempSync(join(tmpdir(), 'vllm-ts-shot-'));
const browser = await chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, args: CHROMIUM_ARGS, viewport: { width: 1280, height: 800 } });
try {
  const page = browser.pages()[0] ?? (await browser.newPage());
  await page.goto(server.base + '/');
  await until('the model', async () => (await page.getByTestId('model-name').innerText()) !== 'loading…');
  await page.getByLabel('Max tokens').fill('24');
  await page.getByLabel('Seed').fill('3');
  await send(page, 'Render **this** as the *Book of Genesis* would:\n\n```python\ndef create(heaven, earth):\n    return light\n```');
  await page.getByLabel('Token probabilities').check();
  await send(page, 'And God said');
  const tokens = page.getByTestId('assistant-text').last().getByTestId('token');
  await tokens.nth(3).click();
  await page.getByTestId('token-popover').waitFor({ state: 'visible' });
  await page.screenshot({ path: OUT });
  console.log(`${OUT}: ${statSync(OUT).size} bytes`);
} finally {
  await browser.close();
  await stop(server.proc);
  rmSync(dir, { recursive: true, force: true });
}
