// Offline beam search (LLM.beamSearch) on the tiny model: width 1 is greedy, and
// wider searches equal a reference beam search written here over the engine's own
// full next-token distributions (logprobs: -1), vLLM V1's rules restated.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { LLM } from '../../src/index.js';
import { beamSearchScore } from '../../src/entrypoints/beam_search.js';

const MODEL = 'models/tiny-llama-kjv';
const PROMPTS = ['In the beginning God created', 'And the LORD said unto Moses,'];
let llm: LLM;

before(async () => {
  llm = await LLM.create({ model: MODEL, useTqdm: false, maxModelLen: 256, numThreads: 1, maxLogprobs: -1 });
});
after(() => llm.close());

interface RefBeam { tokens: number[]; cum: number }

/** The engine's log-softmax over the whole vocabulary after `tokens`, as [token, logprob] best first. */
async function nextDist(seqs: number[][]): Promise<[number, number][][]> {
  const outs = await llm.generate(seqs.map((t) => ({ promptTokenIds: t })), { temperature: 0, maxTokens: 1, logprobs: -1, detokenize: false });
  return outs.map((o) => Object.entries(o.outputs[0].logprobs![0]).map(([k, v]) => [Number(k), v.logprob] as [number, number]).sort((a, b) => b[1] - a[1]));
}

/** vLLM V1's beam search restated: top 2W per beam, EOS candidates finish, best W of the rest live on. */
async function referenceBeamSearch(prompt: number[], w: number, maxTokens: number, lengthPenalty: number, eos: number | null): Promise<RefBeam[]> {
  const score = (b: RefBeam) => beamSearchScore(b.tokens, b.cum, eos, lengthPenalty);
  let beams: RefBeam[] = [{ tokens: prompt, cum: 0 }];
  const done: RefBeam[] = [];
  for (let step = 0; step < maxTokens && beams.length > 0; step++) {
    const dists = await nextDist(beams.map((b) => b.tokens));
    const cands: RefBeam[] = [];
    beams.forEach((b, i) => {
      for (const [tok, lp] of dists[i].slice(0, 2 * w)) {
        const c = { tokens: [...b.tokens, tok], cum: b.cum + lp };
        (tok === eos ? done : cands).push(c);
      }
    });
    beams = cands.sort((a, b) => score(b) - score(a)).slice(0, w);
  }
  return [...done, ...beams].sort((a, b) => score(b) - score(a)).slice(0, w);
}

test('beam width 1 with ignoreEos is greedy decoding, cumulative logprob included', async () => {
  const [greedy] = await llm.generate(PROMPTS[0], { temperature: 0, maxTokens: 12, ignoreEos: true, logprobs: 0 });
  const [out] = await llm.beamSearch(PROMPTS[0], { beamWidth: 1, maxTokens: 12, ignoreEos: true });
  assert.equal(out.sequences.length, 1);
  const seq = out.sequences[0];
  assert.deepEqual(seq.tokens, [...greedy.promptTokenIds, ...greedy.outputs[0].tokenIds]);
  assert.ok(Math.abs(seq.cumLogprob - greedy.outputs[0].cumulativeLogprob!) < 1e-4, `${seq.cumLogprob} vs ${greedy.outputs[0].cumulativeLogprob}`);
  assert.equal(seq.text, llm.tokenizer.decode(seq.tokens));
  assert.equal(seq.finishReason, 'length');
});

test('beams equal a reference beam search over the engine\'s own next-token logprobs', async () => {
  const eos = llm.tokenizer.eosTokenId;
  for (const [w, lengthPenalty, maxTokens] of [[3, 1, 8], [4, 0.5, 6]] as const) {
    const outs = await llm.beamSearch(PROMPTS, { beamWidth: w, maxTokens, lengthPenalty });
    for (const [i, out] of outs.entries()) {
      const prompt = llm.tokenizer.encode(PROMPTS[i]);
      const ref = await referenceBeamSearch(prompt, w, maxTokens, lengthPenalty, eos);
      assert.equal(out.sequences.length, w);
      assert.deepEqual(out.sequences.map((s) => s.tokens), ref.map((r) => r.tokens), `width ${w} prompt ${i}`);
      out.sequences.forEach((s, j) => assert.ok(Math.abs(s.cumLogprob - ref[j].cum) < 1e-4));
    }
  }
});

test('n distinct sequences, sorted by score, deterministic across runs and batch mates', async () => {
  const params = { beamWidth: 5, maxTokens: 10, lengthPenalty: 1 };
  const [a] = await llm.beamSearch(PROMPTS[1], params);
  const [, b] = await llm.beamSearch([PROMPTS[0], PROMPTS[1]], params);
  assert.deepEqual(a.sequences.map((s) => s.tokens), b.sequences.map((s) => s.tokens));
  const keys = new Set(a.sequences.map((s) => s.tokens.join(',')));
  assert.equal(keys.size, 5, 'five distinct beams');
  const scores = a.sequences.map((s) => beamSearchScore(s.tokens, s.cumLogprob, llm.tokenizer.eosTokenId, 1));
  for (let i = 1; i < scores.length; i++) assert.ok(scores[i - 1] >= scores[i], `scores best first: ${scores}`);
  for (const s of a.sequences) assert.equal(s.logprobs.length, s.tokens.length - llm.tokenizer.encode(PROMPTS[1]).length);
  const core = llm.engine.engineCore;
  assert.equal(core.numFreeBlocks, core.cacheConfig.numBlocks - 1, 'every KV block is free again');
});

test('bad beam parameters are refused up front', async () => {
  await assert.rejects(llm.beamSearch('x', { beamWidth: 0, maxTokens: 4 }), /beam_width/);
  await assert.rejects(llm.beamSearch('x', { beamWidth: 2, maxTokens: 0 }), /max_tokens/);
});
