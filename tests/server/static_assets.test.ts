// GET /static/...: the pages' own scripts and styles and the browser libraries
// (marked, DOMPurify, highlight.js) from the package's node_modules, as ES modules
// that really load and work; nothing outside the listed files. And the model cards'
// default_sampling_params: the model's generation_config.json, or vLLM's defaults.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MODEL, startServer, type TestServer } from './helpers.js';
import { HIGHLIGHT_LANGUAGES } from '../../src/entrypoints/openai/serving_static.js';

const KEY = 'static-test-key';
let s: TestServer;
type Cards = { data: { id: string; default_sampling_params: Record<string, number | null> }[] };

before(async () => {
  s = await startServer({ apiKeys: [KEY] });
});
after(async () => {
  await s.server.close();
});

/** Imports JavaScript text as an ES module (a data: URL), as a browser would load it. */
async function importText(text: string): Promise<Record<string, unknown>> {
  return import(`data:text/javascript;base64,${Buffer.from(text).toString('base64')}`);
}

async function get(path: string): Promise<{ status: number; type: string | null; text: string }> {
  const res = await fetch(`${s.base}${path}`);
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

test('the libraries are served as working ES modules without a key', async () => {
  const marked = await get('/static/vendor/marked.js');
  assert.equal(marked.status, 200);
  assert.equal(marked.type, 'text/javascript; charset=utf-8');
  assert.doesNotMatch(marked.text, /sourceMappingURL/);
  const { marked: md } = (await importText(marked.text)) as { marked: { parse(s: string): string } };
  assert.equal(md.parse('**bold** `x`').trim(), '<p><strong>bold</strong> <code>x</code></p>');

  const hl = await get('/static/vendor/highlight.js');
  assert.equal(hl.status, 200);
  const hljs = (await importText(hl.text)).default as {
    registerLanguage(n: string, f: unknown): void;
    highlight(code: string, o: { language: string }): { value: string };
  };
  const python = await get('/static/vendor/hljs/python.js');
  assert.equal(python.status, 200);
  hljs.registerLanguage('python', (await importText(python.text)).default);
  assert.match(hljs.highlight('def f(): return 1', { language: 'python' }).value, /<span class="hljs-keyword">def<\/span>/);
  for (const lang of HIGHLIGHT_LANGUAGES) assert.equal((await get(`/static/vendor/hljs/${lang}.js`)).status, 200, lang);

  const purify = await get('/static/vendor/purify.js');
  assert.equal(purify.status, 200);
  // DOMPurify needs a DOM; without one it says so rather than passing HTML through
  const dp = (await importText(purify.text)).default as { isSupported: boolean };
  assert.equal(dp.isSupported, false);

  const css = await get('/static/vendor/highlight-dark.css');
  assert.equal(css.type, 'text/css; charset=utf-8');
  assert.match(css.text, /\.hljs/);
});

test('only listed files of known kinds are served', async () => {
  const own = await get('/static/playground.css');
  assert.equal(own.status, 200);
  assert.equal(own.type, 'text/css; charset=utf-8');
  assert.equal(own.text, readFileSync(new URL('../../static/playground.css', import.meta.url), 'utf8'));
  for (const bad of [
    '/static/playground.html', // pages have their own routes and headers
    '/static/vendor/../../package.json',
    '/static/%2e%2e/package.json',
    '/static/..%2Fpackage.json',
    '/static/vendor/marked/lib/marked.umd.js',
    '/static/vendor/hljs/nosuch.js',
    '/static/.hidden.js',
    '/static/nosuch.js',
  ]) {
    const r = await get(bad);
    assert.equal(r.status, 404, bad);
    assert.doesNotMatch(r.text, /"name": "vllm-ts"/);
  }
  assert.equal((await fetch(`${s.base}/static/playground.css`, { method: 'POST' })).status, 405);
});

test('model cards carry the sampling defaults of generation_config.json', async () => {
  const auth = { authorization: `Bearer ${KEY}` };
  const card = (await (await fetch(`${s.base}/v1/models`, { headers: auth })).json()) as Cards;
  const gen = JSON.parse(readFileSync(join(MODEL, 'generation_config.json'), 'utf8'));
  assert.deepEqual(card.data[0].default_sampling_params, {
    temperature: gen.temperature,
    top_p: gen.top_p,
    top_k: 0,
    min_p: 0,
    presence_penalty: 0,
    frequency_penalty: 0,
    repetition_penalty: 1,
    max_tokens: null,
  });
  const one = (await (await fetch(`${s.base}/v1/models/${encodeURIComponent(card.data[0].id)}`, { headers: auth })).json()) as Cards['data'][0];
  assert.deepEqual(one.default_sampling_params, card.data[0].default_sampling_params);

  // another generation_config.json, then --generation-config vllm
  const dir = mkdtempSync(join(tmpdir(), 'vllm-ts-genconfig-'));
  try {
    cpSync(MODEL, dir, { recursive: true });
    writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ ...gen, temperature: 0.3, top_k: 7, min_p: 0.05, repetition_penalty: 1.2, max_new_tokens: 40 }));
    for (const [generationConfig, want] of [
      ['auto', { temperature: 0.3, top_p: gen.top_p, top_k: 7, min_p: 0.05, repetition_penalty: 1.2, max_tokens: 40 }],
      ['vllm', { temperature: 1, top_p: 1, top_k: 0, min_p: 0, repetition_penalty: 1, max_tokens: null }],
    ] as const) {
      const t = await startServer({}, { model: dir, generationConfig });
      try {
        const c = (await (await fetch(`${t.base}/v1/models`)).json()) as Cards;
        assert.deepEqual(c.data[0].default_sampling_params, { ...want, presence_penalty: 0, frequency_penalty: 0 }, generationConfig);
      } finally {
        await t.server.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
