// The playground's chat in Debian's headless chromium (playwright-core) against
// `vllm-ts serve` over the tiny model: conversations kept in the browser across
// reloads (switch, rename, delete, export, import), markdown with highlighted code
// and nothing injected running, edit-and-regenerate, token probabilities checked
// against the API's own logprobs, tool calls, the sampling controls' defaults read
// from the server (a copy of the model with another generation_config.json), and a
// phone-width viewport.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, ROOT, serve, skip, stop, until, type Served } from './harness.js';

const MODEL = join(ROOT, 'models/tiny-llama-kjv');
const ARGS = ['--num-threads', '1', '--device', 'cpu', '--max-model-len', '512', '--kv-cache-memory-bytes', String(8 << 20), '--disable-log-stats'];

let server: Served;
let browser: Browser;
const tmp = mkdtempSync(join(tmpdir(), 'vllm-ts-chat-test-'));

before(async () => {
  if (skip) return;
  server = await serve(MODEL, ARGS);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});
after(async () => {
  if (skip) return;
  await browser.close();
  await stop(server.proc);
  rmSync(tmp, { recursive: true, force: true });
});

interface Watched {
  page: Page;
  ctx: BrowserContext;
  /** The bodies of the page's chat requests, in order. */
  chats: Record<string, unknown>[];
  problems: string[];
  violations: () => Promise<string[]>;
}

const IN_PAGE_CSP_WATCH = `
  window.cspViolations = [];
  document.addEventListener('securitypolicyviolation', (e) => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));`;

async function open(base: string, viewport = { width: 1280, height: 860 }): Promise<Watched> {
  const ctx = await browser.newContext({ viewport });
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  const page = await ctx.newPage();
  const chats: Record<string, unknown>[] = [];
  const problems: string[] = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(base + '/')) problems.push('reached ' + r.url());
    if (r.url().endsWith('/v1/chat/completions')) chats.push(JSON.parse(r.postData() ?? '{}'));
  });
  page.on('pageerror', (e) => problems.push(String(e)));
  page.on('console', (m) => {
    // NOTE: chromium reports the injected event handlers it blocks (as it parses them) as console errors.
    if (m.type() === 'error' && !/Executing inline event handler violates/.test(m.text())) problems.push(m.text());
  });
  await page.addInitScript(IN_PAGE_CSP_WATCH);
  await page.goto(base + '/');
  await until('the model', async () => (await page.getByTestId('model-name').innerText()) !== 'loading…');
  return { page, ctx, chats, problems, violations: () => page.evaluate<string[]>('window.cspViolations') };
}

const texts = (page: Page, testid: string) => page.getByTestId(testid).allInnerTexts();
const idle = (page: Page) => until('the answer to finish', async () => page.getByTestId('stop').isDisabled(), 20_000);

async function send(page: Page, text: string): Promise<void> {
  const before = await page.getByTestId('message-stats').count();
  await page.getByLabel('Message', { exact: true }).fill(text);
  await page.getByLabel('Message', { exact: true }).press('Enter');
  try {
    await until('the answer', async () => (await page.getByTestId('message-stats').count()) === before + 1, 20_000);
  } catch (e) {
    (e as Error).message += '\n' + (await page.getByTestId('messages').innerText());
    throw e;
  }
  await idle(page);
}

test('a conversation survives a reload; the sidebar switches, renames, deletes, exports and imports', { skip, timeout: 120_000 }, async () => {
  const w = await open(server.base);
  const { page } = w;
  // the controls start at the model's generation_config (0.8 / 0.95), not the page's own numbers
  assert.equal(await page.getByLabel('Temperature').inputValue(), '0.8');
  assert.equal(await page.getByLabel('Top-p').inputValue(), '0.95');
  await page.getByLabel('Max tokens').fill('8');
  await send(page, 'first question');
  await page.getByTestId('new-chat').click();
  await until('a new, empty chat', async () => (await page.getByTestId('message-user').count()) === 0);
  await send(page, 'second question');
  const answer = await texts(page, 'assistant-text');
  assert.deepEqual(await texts(page, 'conversation-open'), ['second question', 'first question']);

  await page.reload();
  await until('the conversation after the reload', async () => (await page.getByTestId('assistant-text').count()) === 1);
  assert.deepEqual(await texts(page, 'user-text'), ['second question']);
  assert.deepEqual(await texts(page, 'assistant-text'), answer, 'the answer survives the reload');
  assert.ok((await texts(page, 'stat-tokens'))[0].endsWith('tokens'), 'and so do its numbers');
  assert.equal(await page.getByLabel('Max tokens').inputValue(), '8', 'and the changed setting');
  assert.deepEqual(await texts(page, 'conversation-open'), ['second question', 'first question']);

  await page.getByTestId('conversation-open').nth(1).click();
  assert.deepEqual(await texts(page, 'user-text'), ['first question']);
  await page.getByTestId('conversation').nth(1).getByTestId('rename-conversation').click();
  await page.getByTestId('rename-input').fill('Renamed chat');
  await page.getByTestId('rename-input').press('Enter');
  await until('the new name', async () => (await texts(page, 'conversation-open')).includes('Renamed chat'));
  await page.reload();
  await until('the list after the reload', async () => (await texts(page, 'conversation-open')).includes('Renamed chat'));
  assert.deepEqual(await texts(page, 'user-text'), ['first question'], 'the reload reopens the conversation last shown');

  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-all').click()]);
  const file = join(tmp, 'export.json');
  await download.saveAs(file);
  const exported = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(exported.format, 'vllm-ts.conversations');
  assert.deepEqual(exported.conversations.map((c: { title: string }) => c.title).sort(), ['Renamed chat', 'second question']);
  const second = exported.conversations.find((c: { title: string }) => c.title === 'second question');
  assert.deepEqual(second.messages.map((m: { role: string; content: string }) => [m.role, m.content]), [['user', 'second question'], ['assistant', answer[0]]]);

  page.once('dialog', (d) => void d.accept());
  await page.getByTestId('conversation').filter({ hasText: 'Renamed chat' }).getByTestId('delete-conversation').click();
  await until('the deletion', async () => (await page.getByTestId('conversation').count()) === 1);
  await page.reload();
  await until('the list after the reload', async () => (await page.getByTestId('conversation').count()) === 1);
  assert.deepEqual(await texts(page, 'conversation-open'), ['second question']);

  // importing the export brings the deleted one back, and a copy of the other (never overwritten)
  await page.getByTestId('import-file').setInputFiles(file);
  await until('the import', async () => (await page.getByTestId('conversation').count()) === 3);
  assert.deepEqual((await texts(page, 'conversation-open')).sort(), ['Renamed chat', 'second question', 'second question']);
  assert.match(await page.getByTestId('sidebar-note').innerText(), /Imported 2 conversations/);
  const bad = join(tmp, 'bad.json');
  writeFileSync(bad, JSON.stringify({ conversations: [{ messages: [{ role: 'wizard', content: 'x' }] }] }));
  await page.getByTestId('import-file').setInputFiles(bad);
  await until('the refusal', async () => /Import failed: .*role/.test(await page.getByTestId('sidebar-note').innerText()));
  assert.equal(await page.getByTestId('conversation').count(), 3);

  assert.deepEqual(w.problems, []);
  assert.deepEqual(await w.violations(), []);
  await w.ctx.close();
});

const INJECTED = '<script>window.pwned = "script"</script><img src=x onerror="window.pwned = \'img\'"> <a href="javascript:window.pwned=1">js link</a> <iframe src="data:text/html,<script>parent.pwned=1</script>"></iframe>';

test('messages render as markdown with highlighted, copyable code; injected HTML runs nothing', { skip, timeout: 90_000 }, async () => {
  const w = await open(server.base);
  const { page } = w;
  // an answer with markup, brought in by import (the tiny model writes no markdown of its own)
  const conv = {
    title: 'markdown',
    messages: [
      { role: 'user', content: 'Show me **bold** and `code`\n\n' + INJECTED },
      { role: 'assistant', content: '## Heading\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```python\ndef add(x, y):\n    return x + y\n```\n\n[docs](https://example.com) ' + INJECTED },
    ],
  };
  const file = join(tmp, 'markdown.json');
  writeFileSync(file, JSON.stringify({ conversations: [conv] }));
  await page.getByTestId('import-file').setInputFiles(file);
  await until('the imported chat', async () => (await page.getByTestId('assistant-text').count()) === 1);
  const user = page.getByTestId('user-text');
  assert.equal(await user.locator('strong').innerText(), 'bold');
  assert.equal(await user.locator('code').innerText(), 'code');
  const answer = page.getByTestId('assistant-text').first();
  assert.equal(await answer.locator('h2').innerText(), 'Heading');
  assert.equal(await answer.locator('td').count(), 2);
  assert.deepEqual(await answer.locator('.hljs-keyword').allInnerTexts(), ['def', 'return']);
  assert.equal(await answer.locator('a[href="https://example.com"]').getAttribute('rel'), 'noopener noreferrer');
  // a message typed in the composer renders too, and its answer arrives
  await page.getByLabel('Max tokens').fill('4');
  await send(page, '*typed* <img src=x onerror="window.pwned = 2"><script>window.pwned = 3</script>');
  assert.equal(await page.getByTestId('user-text').last().locator('em').innerText(), 'typed');

  await page.waitForTimeout(300);
  assert.equal(await page.evaluate('window.pwned'), undefined, 'no injected script, handler, link or frame ran');
  const messages = page.getByTestId('messages');
  for (const sel of ['script', 'iframe', '[onerror]', 'a[href^="javascript:"]', '[style]']) {
    assert.equal(await messages.locator(sel).count(), 0, `no ${sel} in the transcript`);
  }
  // what the Content-Security-Policy saw were the injected handlers, blocked
  for (const v of await w.violations()) assert.match(v, /^script-src-attr inline$/);

  await answer.getByTestId('copy-code').click();
  assert.equal(await page.evaluate('navigator.clipboard.readText()'), 'def add(x, y):\n    return x + y\n');
  await page.getByTestId('message-user').first().getByTestId('copy-message').click();
  assert.equal(await page.evaluate('navigator.clipboard.readText()'), conv.messages[0].content, 'a message copies as its markdown source');
  assert.deepEqual(w.problems, []);
  await w.ctx.close();
});

test('editing a user message regenerates from there, replacing the later turns; an answer regenerates', { skip, timeout: 90_000 }, async () => {
  const w = await open(server.base);
  const { page } = w;
  await page.getByTestId('new-chat').click();
  await page.getByLabel('Max tokens').fill('6');
  await send(page, 'one');
  await send(page, 'two');
  assert.equal(await page.getByTestId('message-assistant').count(), 2);
  assert.deepEqual((w.chats.at(-1)!.messages as { role: string }[]).map((m) => m.role), ['user', 'assistant', 'user']);

  await page.getByTestId('message-user').first().getByTestId('edit-message').click();
  await page.getByTestId('edit-input').fill('uno');
  await page.getByTestId('edit-save').click();
  await until('the new answer', async () => (await page.getByTestId('message-stats').count()) === 1, 20_000);
  await idle(page);
  assert.deepEqual(await texts(page, 'user-text'), ['uno'], 'the later turns are gone');
  assert.equal(await page.getByTestId('message-assistant').count(), 1);
  assert.deepEqual(w.chats.at(-1)!.messages, [{ role: 'user', content: 'uno' }], 'the model saw the edited message alone');

  await page.getByTestId('regenerate').click();
  await until('the regenerated answer', async () => w.chats.length === 4);
  await until('its numbers', async () => (await page.getByTestId('message-stats').count()) === 1, 20_000);
  await idle(page);
  assert.deepEqual(w.chats.at(-1)!.messages, [{ role: 'user', content: 'uno' }]);
  assert.equal(await page.getByTestId('message-assistant').count(), 1, 'the answer was replaced, not added');

  await page.reload();
  await until('the conversation after the reload', async () => (await page.getByTestId('message-assistant').count()) === 1);
  assert.deepEqual(await texts(page, 'user-text'), ['uno'], 'what is kept is the edited conversation');
  assert.deepEqual(w.problems, []);
  await w.ctx.close();
});

interface ApiLogprob {
  token: string;
  logprob: number;
  top_logprobs: { token: string; logprob: number }[];
}
const shown = (t: string) => t.replace(/ /g, '␣').replace(/\n/g, '↵').replace(/\t/g, '⇥');

test('token probabilities: each token shows its top alternatives, as the API gives them', { skip, timeout: 90_000 }, async () => {
  const w = await open(server.base);
  const { page } = w;
  await page.getByTestId('new-chat').click();
  await page.getByLabel('Token probabilities').check();
  await page.getByLabel('Top alternatives').fill('3');
  await page.getByLabel('Seed').fill('11');
  await page.getByLabel('Max tokens').fill('6');
  await send(page, 'And God said');
  const body = w.chats.at(-1)!;
  assert.equal(body.logprobs, true);
  assert.equal(body.top_logprobs, 3);
  // the same request, seeded, straight to the API: the page must show exactly its tokens and alternatives
  const res = await fetch(`${server.base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, stream: false, stream_options: undefined }),
  });
  const want = ((await res.json()) as { choices: { logprobs: { content: ApiLogprob[] } }[] }).choices[0].logprobs.content;
  const tokens = page.getByTestId('assistant-text').getByTestId('token');
  assert.deepEqual(await tokens.allTextContents(), want.map((t) => t.token));

  const pop = page.getByTestId('token-popover');
  for (const i of [0, want.length - 1]) {
    await tokens.nth(i).hover();
    await pop.waitFor({ state: 'visible' });
    const rows = await pop.getByTestId('token-alternatives').locator('tr').all();
    assert.equal(rows.length, want[i].top_logprobs.length);
    assert.equal(rows.length, 3);
    for (const [j, row] of rows.entries()) {
      const [tok, p, lp] = await row.locator('td').allInnerTexts();
      assert.equal(tok, shown(want[i].top_logprobs[j].token));
      assert.equal(Number(lp), Number(want[i].top_logprobs[j].logprob.toFixed(3)));
      assert.ok(p.endsWith('%'));
    }
    assert.match(await pop.innerText(), new RegExp(`logprob ${want[i].logprob.toFixed(3).replace('.', '\\.')}`));
  }
  // a click pins the popover; Escape closes it
  await tokens.nth(1).click();
  await page.mouse.move(5, 5);
  await page.waitForTimeout(100);
  assert.ok(await pop.isVisible(), 'pinned');
  await page.keyboard.press('Escape');
  await pop.waitFor({ state: 'hidden' });
  // the keyboard walks the tokens
  await page.getByTestId('assistant-text').focus();
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  assert.match(await pop.innerText(), new RegExp(`logprob ${want[1].logprob.toFixed(3).replace('.', '\\.')}`));
  await page.keyboard.press('Escape');
  // the same answer as markdown, and back
  await page.getByTestId('toggle-tokens').click();
  await until('the markdown view', async () => (await page.getByTestId('assistant-text').getByTestId('token').count()) === 0);
  assert.equal(await page.getByTestId('assistant-text').innerText(), want.map((t) => t.token).join('').trim());
  await page.getByTestId('toggle-tokens').click();
  await until('the tokens view', async () => (await page.getByTestId('assistant-text').getByTestId('token').count()) === want.length);

  // raw completions show their tokens too (the completions API's logprobs)
  await page.getByTestId('mode-completion').click();
  await page.getByLabel('Prompt', { exact: true }).fill('In the beginning');
  await page.getByTestId('send').click();
  await until('the completion', async () => (await page.getByTestId('completion-stats').getByTestId('stat-tokens').count()) === 1, 20_000);
  const ctoks = page.getByTestId('completion-text').getByTestId('token');
  assert.equal(await ctoks.count(), 6);
  await ctoks.first().hover();
  await pop.waitFor({ state: 'visible' });
  assert.ok((await pop.getByTestId('token-alternatives').locator('tr').count()) >= 3);
  assert.deepEqual(w.problems, []);
  await w.ctx.close();
});

test('tools: the tools box sends tools, the transcript shows the call, the reply goes back as its result', { skip, timeout: 90_000 }, async () => {
  const w = await open(server.base);
  const { page } = w;
  await page.getByTestId('new-chat').click();
  await page.getByLabel('Max tokens').fill('120');
  await page.getByLabel('Temperature').fill('0');
  const tool = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'Rome'] } }, required: ['city'] } } };
  // a tools box that is not JSON: said so, nothing sent, the message kept in the composer
  await page.getByLabel('Tools (chat)').fill('[{"type": "function",');
  await page.getByLabel('Message', { exact: true }).fill('Weather?');
  await page.getByLabel('Message', { exact: true }).press('Enter');
  await until('the error', async () => (await page.getByTestId('message-error').count()) === 1);
  assert.match(await page.getByTestId('message-error').innerText(), /The tools box is not JSON/);
  assert.equal(await page.getByTestId('message-user').count(), 0);
  assert.equal(await page.getByLabel('Message', { exact: true }).inputValue(), 'Weather?');
  assert.equal(w.chats.length, 0);
  await page.getByLabel('Tools (chat)').fill(JSON.stringify([tool]));
  await page.getByLabel('Tool choice').selectOption('first');
  await send(page, 'Weather?');
  assert.deepEqual(w.chats.at(-1)!.tools, [tool]);
  assert.deepEqual(w.chats.at(-1)!.tool_choice, { type: 'function', function: { name: 'get_weather' } });
  assert.equal(w.chats.at(-1)!.temperature, 0);
  const call = page.getByTestId('tool-call');
  assert.equal(await call.count(), 1);
  assert.match(await call.innerText(), /get_weather/);
  assert.match(await call.innerText(), /"city": "(Paris|Rome)"/);
  assert.ok(await page.getByTestId('tool-reply').isVisible());

  await page.getByLabel('Tool choice').selectOption('none');
  await send(page, 'Sunny, 21 C');
  const sent = w.chats.at(-1)!.messages as { role: string; tool_call_id?: string; tool_calls?: { id: string }[] }[];
  assert.deepEqual(sent.map((m) => m.role), ['user', 'assistant', 'tool']);
  assert.equal(sent[2].tool_call_id, sent[1].tool_calls![0].id);
  assert.equal(await page.getByTestId('message-tool').count(), 1);
  assert.ok(await page.getByTestId('tool-reply').isHidden());
  assert.deepEqual(w.problems, []);
  await w.ctx.close();
});

test('the page is usable at phone width', { skip, timeout: 60_000 }, async () => {
  const w = await open(server.base, { width: 390, height: 800 });
  const { page } = w;
  assert.ok(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth'), 'no sideways scrolling');
  assert.ok(!(await page.getByTestId('new-chat').isVisible()) || (await page.getByTestId('new-chat').boundingBox())!.x < 0, 'the sidebar is a drawer');
  await page.getByTestId('drawer-toggle').click();
  await until('the drawer', async () => ((await page.getByTestId('new-chat').boundingBox())?.x ?? -1) >= 0);
  await page.getByTestId('new-chat').click();
  await until('the drawer to close', async () => ((await page.getByTestId('new-chat').boundingBox())?.x ?? 0) < 0);
  await page.getByLabel('Max tokens').fill('4');
  await send(page, 'Hello from a phone, with a long unbroken word: ' + 'x'.repeat(120));
  assert.ok(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth'), 'a long message wraps');
  assert.deepEqual(w.problems, []);
  await w.ctx.close();
});

test("the controls' defaults come from the served generation_config.json; only changed fields are sent", { skip, timeout: 90_000 }, async () => {
  const model = join(tmp, 'model');
  cpSync(MODEL, model, { recursive: true });
  const gen = JSON.parse(readFileSync(join(MODEL, 'generation_config.json'), 'utf8'));
  writeFileSync(join(model, 'generation_config.json'), JSON.stringify({ ...gen, temperature: 0.3, top_p: 0.9, top_k: 7, repetition_penalty: 1.15, max_new_tokens: 5 }));
  const other = await serve(model, ARGS);
  try {
    const w = await open(other.base);
    const { page } = w;
    await until('the defaults', async () => (await page.getByLabel('Temperature').inputValue()) === '0.3');
    assert.equal(await page.locator('#temperature-out').innerText(), '0.3');
    assert.equal(await page.getByLabel('Top-p').inputValue(), '0.9');
    assert.equal(await page.getByLabel('Top-k').inputValue(), '7');
    assert.equal(await page.getByLabel('Repetition penalty').inputValue(), '1.15');
    assert.equal(await page.getByLabel('Min-p').inputValue(), '0');
    assert.equal(await page.getByLabel('Max tokens').getAttribute('placeholder'), '5');
    assert.ok(await page.getByTestId('reset-temperature').isHidden(), 'nothing is changed yet');

    await send(page, 'In the beginning');
    const first = w.chats.at(-1)!;
    for (const k of ['temperature', 'top_p', 'top_k', 'min_p', 'repetition_penalty', 'presence_penalty', 'frequency_penalty', 'max_tokens', 'seed', 'logprobs']) {
      assert.ok(!(k in first), `${k} is left to the server`);
    }
    assert.ok(Number((await texts(page, 'stat-tokens'))[0].replace(/\D/g, '')) <= 5, "the server's max_new_tokens applied");

    await page.getByLabel('Top-k').fill('3');
    assert.ok(await page.getByTestId('reset-top-k').isVisible());
    await send(page, 'And');
    const second = w.chats.at(-1)!;
    assert.equal(second.top_k, 3);
    assert.ok(!('temperature' in second));
    await page.getByTestId('reset-top-k').click();
    assert.equal(await page.getByLabel('Top-k').inputValue(), '7');
    await send(page, 'Then');
    assert.ok(!('top_k' in w.chats.at(-1)!), 'reset: left to the server again');
    assert.deepEqual(w.problems, []);
    await w.ctx.close();
  } finally {
    await stop(other.proc);
  }
});
