// The README's offline example, run verbatim from a fresh project: `npm pack` this
// package, install the tarball into a temporary folder (dependencies from the npm
// cache, the registry only for what it lacks), then `node example.mjs`. A TypeScript
// consumer also type-checks against the packed declarations, with the public types
// imported by name. The native library is copied next to the installed package
// instead of compiled again by its install script (minutes of g++ on a small machine).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Files under /static/ the playground loads. */
const INSTALLED_ASSETS = ['playground.css', 'playground/main.js', 'playground/chat.js', 'vendor/marked.js', 'vendor/purify.js', 'vendor/highlight.js', 'vendor/hljs/python.js', 'vendor/highlight-light.css'];
const dir = mkdtempSync(join(tmpdir(), 'vllm-ts-pack-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function run(cmd: string, args: string[], cwd: string, timeoutMs = 240_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** The newest mtime under a folder (for: is dist/ older than src/?). */
function newest(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...readdirSync(path).map((n) => newest(join(path, n))));
}

/** The first ```js block of the README's "## Offline" section, as written. */
function readmeExample(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Offline\n'));
  const m = /```js\n([\s\S]*?)```/.exec(section);
  assert.ok(m, 'README.md has a ```js block under ## Offline');
  return m[1];
}

test('the README offline example runs verbatim from a project that installed the packed tarball', { timeout: 600_000 }, async () => {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const lib = join(ROOT, 'build', 'libvllm_cpu.so');
  assert.ok(existsSync(lib), 'build/libvllm_cpu.so exists (npm run build:native)');
  if (!existsSync(join(ROOT, 'dist', 'index.js')) || newest(join(ROOT, 'src')) > newest(join(ROOT, 'dist'))) {
    const b = await run(npm, ['run', 'build:ts'], ROOT);
    assert.equal(b.code, 0, b.out);
  }
  const pack = await run(npm, ['pack', '--ignore-scripts', '--pack-destination', dir, '--json'], ROOT);
  assert.equal(pack.code, 0, pack.out);
  const tarball = join(dir, (JSON.parse(pack.out.slice(pack.out.indexOf('['))) as { filename: string }[])[0].filename);

  const project = join(dir, 'app');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }));
  const install = await run(npm, ['install', '--prefer-offline', '--ignore-scripts', '--no-package-lock', tarball], project);
  assert.equal(install.code, 0, install.out);
  const installed = join(project, 'node_modules', 'vllm-ts');
  mkdirSync(join(installed, 'build'), { recursive: true });
  copyFileSync(lib, join(installed, 'build', 'libvllm_cpu.so'));

  writeFileSync(join(project, 'example.mjs'), readmeExample());
  const ex = await run(process.execPath, ['example.mjs'], project);
  assert.equal(ex.code, 0, ex.out);
  const lines = ex.out.trim().split('\n').filter((l) => !/^(INFO|WARNING|DEBUG) /.test(l));
  assert.ok(lines.length >= 3, ex.out);
  assert.match(lines.at(-1)!, /^\d+$/, 'the embedding length comes last');
  assert.ok(Number(lines.at(-1)) > 0);
  assert.ok(lines.slice(0, -1).join('').trim().length > 0, 'the generations printed text');

  // The web pages' files from the installed package: its own static/ and the browser
  // libraries (marked, DOMPurify, highlight.js) from its installed dependencies.
  const servingStatic = pathToFileURL(join(installed, 'dist', 'entrypoints', 'openai', 'serving_static.js')).href;
  const assets = await run(process.execPath, ['--input-type=module', '-e', `
    const { staticAsset } = await import(${JSON.stringify(servingStatic)});
    for (const p of ${JSON.stringify(INSTALLED_ASSETS)}) {
      const a = staticAsset(p);
      if (a === null || a.body.length < 100) throw new Error('the installed package does not serve ' + p);
    }`], project);
  assert.equal(assets.code, 0, assets.out);

  // The public types, by name, from the packed declarations.
  writeFileSync(join(project, 'types.ts'), `
import { LLM, SamplingParams, TINY_MODEL, type ChatMessage, type EmbeddingRequestOutput, type PoolingParams, type SamplingParamsInit,
  type RequestOutput, type LLMOptions, type GenerateOptions, type DownloadProgressEvent, type PromptType, type CompletionOutput } from 'vllm-ts';
const params: SamplingParamsInit = { temperature: 0, maxTokens: 8, stop: 'x' };
const opts: LLMOptions = { model: TINY_MODEL, revision: 'main', downloadProgress: (e: DownloadProgressEvent) => void e.downloadedBytes };
const messages: ChatMessage[] = [{ role: 'user', content: 'hi' }];
const pooling: Partial<PoolingParams> = { pooling: 'mean' };
const g: GenerateOptions = {};
const p: PromptType = { promptTokenIds: [1, 2] };
export async function f(): Promise<[RequestOutput[], EmbeddingRequestOutput[], CompletionOutput, SamplingParams]> {
  const llm = await LLM.create(opts);
  const outs = await llm.chat(messages, params);
  return [outs, await llm.embed(p, pooling), outs[0].outputs[0], SamplingParams.create(params)];
}
void g;
`);
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, skipLibCheck: false, types: ['node'], typeRoots: [join(ROOT, 'node_modules', '@types')] }, files: ['types.ts'] }));
  const tsc = await run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], project);
  assert.equal(tsc.code, 0, tsc.out);
});
