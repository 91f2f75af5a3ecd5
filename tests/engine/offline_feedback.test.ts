// Offline feedback: LLM.generate's progress bar advances while the batch runs (with
// elapsed time and tokens per second), LLM.stream yields text as it is made, and
// `vllm-ts generate` streams several prompts in their order.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OrderedPrinter, readPrompts } from '../../src/entrypoints/cli/generate.js';
import { LLM } from '../../src/entrypoints/llm.js';

const MODEL = 'models/tiny-llama-kjv';
const frames: string[] = [];
const tty = { isTTY: true, columns: 200, write: (s: string) => (frames.push(s), true), cursorTo: () => true, clearLine: () => true, moveCursor: () => true };
let llm: LLM;

before(async () => {
  llm = await LLM.create({ model: MODEL, maxModelLen: 256, numThreads: 1, kvCacheMemoryBytes: 8 << 20, device: 'cpu', progressStream: tty, progressIntervalMs: 0 });
});
after(() => llm.close());

test('the progress bar advances as requests finish, with elapsed time and output tok/s while the batch runs', async () => {
  frames.length = 0;
  const prompts = ['In the beginning', 'And God said', 'The LORD is my shepherd', 'Blessed are'];
  // Different lengths, so that requests finish at different steps.
  const params = [4, 24, 48, 96].map((maxTokens) => ({ temperature: 0, maxTokens, ignoreEos: true }));
  const outs = await llm.generate(prompts, params);
  assert.equal(outs.length, 4);
  const text = frames.join('');
  const shown = [...text.matchAll(/Processed prompts: \S* (\d)\/4 \[(\d+\.\d)s, est\. speed input: ([\d.]+) toks\/s, output: ([\d.]+) toks\/s\]/g)];
  const counts = shown.map((m) => Number(m[1]));
  assert.ok(counts.some((c) => c > 0 && c < 4), `an intermediate count is drawn: ${counts.join(' ')}`);
  assert.equal(counts.at(-1), 4);
  assert.ok(shown.some((m) => Number(m[1]) < 4 && Number(m[4]) > 0), 'output speed shows before the batch is done');
  assert.ok(Number(shown.at(-1)![2]) > 0, 'elapsed seconds shown');
});

test('no bar when the stream is not a terminal, or with useTqdm false', async () => {
  frames.length = 0;
  await llm.generate('In the beginning', { temperature: 0, maxTokens: 2 }, { useTqdm: false });
  assert.equal(frames.length, 0);
});

test('LLM.stream yields deltas that add up to what generate returns, several per prompt', async () => {
  const prompts = ['In the beginning', 'And God said'];
  const params = { temperature: 0, maxTokens: 12, ignoreEos: true };
  const whole = await llm.generate(prompts, params, { useTqdm: false });
  const texts = ['', ''];
  const pieces = [0, 0];
  let finished = 0;
  for await (const [i, out] of llm.stream(prompts, params)) {
    texts[i] += out.outputs[0].text;
    pieces[i]++;
    if (out.finished) finished++;
  }
  assert.deepEqual(texts, whole.map((o) => o.outputs[0].text));
  assert.ok(pieces.every((n) => n > 3), `pieces per prompt: ${pieces}`);
  assert.equal(finished, 2);
});

test('OrderedPrinter writes each prompt in order, streaming the first unfinished one', () => {
  const out: string[] = [];
  const p = new OrderedPrinter(['A:', 'B:'], (s) => out.push(s));
  p.add(1, ' b1', false); // held: B is not first yet
  p.add(0, ' a1', false);
  assert.equal(out.join(''), 'A: a1');
  p.add(1, ' b2', true);
  p.add(0, ' a2', true);
  assert.equal(out.join(''), 'A: a1 a2\n\nB: b1 b2\n');
});

test('vllm-ts generate: repeated --prompt and --prompt-file, each answered in order as the offline API does', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gen-'));
  const file = join(dir, 'prompts.txt');
  writeFileSync(file, 'The LORD is my shepherd\n\nBlessed are\n');
  assert.deepEqual(readPrompts(['x'], file), ['x', 'The LORD is my shepherd', 'Blessed are']);
  assert.throws(() => readPrompts(undefined, undefined), /give a prompt/);
  assert.throws(() => readPrompts(undefined, join(dir, 'none.txt')), /no such file/);
  const prompts = ['In the beginning', 'And God said', 'The LORD is my shepherd', 'Blessed are'];
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/entrypoints/cli/main.ts', 'generate', MODEL, '--prompt', prompts[0], '--prompt', prompts[1],
    '--prompt-file', file, '--temperature', '0', '--max-tokens', '8', '--max-model-len', '256', '--num-threads', '1', '--kv-cache-memory-bytes', String(8 << 20)], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const want = await llm.generate(prompts, { temperature: 0, maxTokens: 8 }, { useTqdm: false });
  assert.equal(r.stdout, want.map((o, i) => prompts[i] + o.outputs[0].text + '\n').join('\n'));
});
