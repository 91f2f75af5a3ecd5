// The web playground end to end: `vllm-ts serve` (a child process, with an API
// key) over the tiny model, driven in Debian's headless chromium by playwright-core.
// Screenshots go to tests/browser/artifacts/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, ROOT, serve, skip, stop, until } from './harness.js';

const ARTIFACTS = join(ROOT, 'tests/browser/artifacts');
const KEY = 'playground-test-key';
const MODEL_NAME = 'tiny-llama-kjv';

/** The server of this test: with an API key, the config's 2048-token context (so that a long generation lasts seconds). */
const serveTiny = () =>
  serve('models/tiny-llama-kjv', [
    '--api-key', KEY, '--served-model-name', MODEL_NAME,
    '--kv-cache-memory-bytes', String(32 << 20), '--num-threads', '1', '--device', 'cpu',
    '--disable-log-stats', '--disable-log-requests',
  ]);

/** One Prometheus sample from the server itself (labels matched as a substring). */
async function metric(base: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name + '{') && l.includes(labels));
  return line === undefined ? NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
}

// In-page scripts, as text: this project type-checks without the DOM library.
const IN_PAGE_CSP_WATCH = `
  window.cspViolations = [];
  document.addEventListener('securitypolicyviolation', (e) => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));`;
/** Counts changes to the conversation made while the answer has text and Stop is live, i.e. while it streams. */
const IN_PAGE_COUNT_UPDATES = `
  window.streamedUpdates = 0;
  const stopBtn = document.querySelector('[data-testid=stop]');
  new MutationObserver(() => {
    const last = [...document.querySelectorAll('[data-testid=assistant-text]')].at(-1);
    if (!stopBtn.disabled && last && last.textContent) window.streamedUpdates++;
  }).observe(document.querySelector('[data-testid=messages]'), { subtree: true, childList: true, characterData: true });`;

const text = (page: Page, testid: string) => page.getByTestId(testid).last().innerText();
const num = (s: string) => Number(s.replace(/[^\d.]/g, ''));

test('the playground chats, streams, stops, completes and shows the engine live', { skip, timeout: 90_000 }, async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, name) });
  const server = await serveTiny();
  const { base } = server;
  const userDataDir = mkdtempSync(join(tmpdir(), 'vllm-ts-chromium-'));
  let browser: Awaited<ReturnType<typeof chromium.launchPersistentContext>> | undefined;
  try {
    // The page itself: under 100 KB, HTML, locked down; /v1 still needs the key.
    const res = await fetch(`${base}/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /connect-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-eval/);
    const html = await res.text();
    assert.ok(Buffer.byteLength(html) < 100 * 1024, `the page is ${Buffer.byteLength(html)} bytes`);
    assert.equal(await (await fetch(`${base}/playground`)).text(), html);
    assert.equal((await fetch(`${base}/v1/models`)).status, 401);

    browser = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 820 },
    });
    const page = browser.pages()[0] ?? (await browser.newPage());
    const requests: string[] = [];
    const consoleErrors: string[] = [];
    browser.on('request', (r) => requests.push(r.url()));
    page.on('console', (m) => {
      // the 401s are the page finding out that it needs the key
      if (m.type() === 'error' && !/status of 401/.test(m.text())) consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    await page.addInitScript(IN_PAGE_CSP_WATCH);

    // 1. It asks for the API key, then shows the model and its context length.
    await page.goto(`${base}/`);
    await page.getByTestId('api-key-panel').waitFor({ state: 'visible' });
    await shot(page, '01-api-key.png');
    await page.getByLabel('This server needs an API key').fill(KEY);
    await page.getByTestId('api-key-save').click();
    await until('the model name', async () => (await text(page, 'model-name')) === MODEL_NAME);
    assert.equal(await text(page, 'context-length'), '2,048 ctx');
    assert.ok(await page.getByTestId('api-key-panel').isHidden());
    assert.equal(await page.evaluate("sessionStorage.getItem('vllm-ts.apiKey')"), KEY);

    // 2. A chat message: the answer streams in (painted in several frames while Stop is live), then its numbers.
    // NOTE: the page paints at most once an animation frame; 256 tokens span several frames even on a fast machine.
    await page.getByLabel('Max tokens').fill('256');
    await page.getByLabel('ignore EOS').check();
    await page.evaluate(IN_PAGE_COUNT_UPDATES);
    await page.getByLabel('Message').fill('Who made the heaven and the earth?');
    await page.getByLabel('Message').press('Enter');
    await page.getByTestId('message-stats').waitFor({ timeout: 10_000 });
    const answer = await text(page, 'assistant-text');
    assert.ok(answer.trim().length > 0, 'the answer has text');
    const updates = await page.evaluate<number>('window.streamedUpdates');
    assert.ok(updates >= 2, `the answer arrived in ${updates} streamed updates`);
    assert.equal(await text(page, 'stat-tokens'), '256 tokens');
    assert.equal(await text(page, 'stat-finish'), 'hit max tokens');
    assert.ok(num(await text(page, 'stat-ttft')) > 0);
    assert.ok(num(await text(page, 'stat-rate')) > 0);
    assert.equal(await text(page, 'user-text'), 'Who made the heaven and the earth?');
    await shot(page, '02-chat.png');

    // 3. A long generation (up to the context length): the engine panel sees it, Stop ends it.
    const successBefore = await metric(base, 'vllm:request_success_total', 'finished_reason="abort"');
    await page.getByLabel('Max tokens').fill('');
    await until('the panel to show an idle engine', async () => (await text(page, 'metric-gen-rate')) === '0.0 tok/s', 5000);
    await page.getByLabel('Message').fill('And it came to pass');
    await page.getByTestId('send').click();
    await until('the long answer to start', async () => (await text(page, 'assistant-text')).length > 0);
    await until('the panel to show a running request', async () => num(await text(page, 'metric-running')) >= 1, 5000);
    await until('the panel to show tokens/s', async () => num(await text(page, 'metric-gen-rate')) > 0, 5000);
    assert.match(await text(page, 'metric-kv'), /^\d+\.\d%$/);
    assert.ok(num(await text(page, 'metric-kv')) > 0, 'the KV cache holds the running request');
    await shot(page, '03-long-generation.png');
    await page.getByTestId('stop').click();
    await until('the stopped mark', async () => (await page.getByTestId('stat-finish').count()) === 2);
    assert.equal(await text(page, 'stat-finish'), 'stopped');
    const stoppedAt = (await text(page, 'assistant-text')).length;
    assert.ok(num(await text(page, 'stat-tokens')) < 2000, 'stopped well before the context length');
    assert.ok(await page.getByTestId('stop').isDisabled());
    assert.ok(await page.getByTestId('send').isEnabled());
    await until('the server to abort the request', async () =>
      (await metric(base, 'vllm:request_success_total', 'finished_reason="abort"')) === successBefore + 1);
    await until('the panel to show no running request', async () => (await text(page, 'metric-running')) === '0', 5000);
    assert.equal((await text(page, 'assistant-text')).length, stoppedAt, 'no text after Stop');

    // 4. Raw completion: the prompt, then its continuation, with numbers.
    await page.getByTestId('mode-completion').click();
    await page.getByLabel('Max tokens').fill('16');
    const prompt = 'In the beginning God created';
    await page.getByLabel('Prompt', { exact: true }).fill(prompt);
    await page.getByTestId('send').click();
    await until('the completion numbers', async () => (await page.getByTestId('completion-stats').getByTestId('stat-tokens').count()) === 1, 10_000);
    assert.equal(await text(page, 'stat-tokens'), '16 tokens');
    const out = await text(page, 'completion-output');
    const gen = await text(page, 'completion-text');
    assert.ok(gen.length > 0 && out === prompt + gen, 'the output is the prompt and its continuation');
    const prefix = await text(page, 'metric-prefix');
    assert.match(prefix, /^\d+\.\d%$/, 'the prefix-cache hit rate is shown');
    await shot(page, '04-completion.png');

    // 5. A JSON schema in the box constrains the output (vLLM's structured_outputs);
    // EOS ends it (step 3 turned ignore EOS on).
    await page.getByLabel('ignore EOS').uncheck();
    await page.getByLabel('JSON schema (structured output)').fill('{"enum": ["yes", "no"]}');
    await page.getByTestId('send').click();
    await until('the constrained completion', async () => (await page.getByTestId('completion-stats').getByTestId('stat-tokens').count()) === 1, 10_000);
    const constrained = await text(page, 'completion-text');
    assert.ok(['"yes"', '"no"'].includes(constrained), `schema-valid output, got ${JSON.stringify(constrained)}`);
    await page.getByLabel('JSON schema (structured output)').fill('');
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.getByTestId('mode-chat').click();
    await shot(page, '05-chat-dark.png');

    const csp2 = await page.evaluate<string[]>('window.cspViolations');
    assert.deepEqual(csp2, [], 'no Content-Security-Policy violations');
    assert.deepEqual(consoleErrors, [], 'no errors in the console');
    const foreign = requests.filter((u) => !u.startsWith(base + '/'));
    assert.deepEqual(foreign, [], 'the page reached nothing but the server');
  } catch (e) {
    (e as Error).message += `\n--- server log ---\n${server.log().slice(-4000)}`;
    throw e;
  } finally {
    await browser?.close();
    await stop(server.proc);
    rmSync(userDataDir, { recursive: true, force: true });
  }
});
