// The tests every compact-reference fixture gets (tests/helpers/compact_reference.ts):
// teacher-forced logprobs within 1e-3 of HuggingFace (its top-k tokens of each
// position), argmax, final hidden states, and greedy LLM.generate matching HF alone,
// batched, with chunked prefill and from the prefix cache, with blocks of 4.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LLM } from '../../src/index.js';
import { compareLogprobs, decisivePrefix, loadCompactReference, maxAbsDiff } from './compact_reference.js';
import { TestModel } from './forward.js';

const TINY_TOKENIZER = 'models/tiny-llama-kjv';
/** HF top-1 minus top-2 logit below which either token is a legitimate greedy pick. */
const NEAR_TIE = 1e-3;

export interface CompactFixture {
  dir: string;
  arch: string;
}

/** aloneEvery: run every case alone against the batch (else only the longest). */
export function compactFixtureTests(fixtures: CompactFixture[], { aloneEvery = false } = {}): void {
  for (const { dir, arch } of fixtures) {
    const name = dir.split('/').pop()!;

    // Blocks of 4: the 8-token windows and the 51-token sequence span many cache blocks.
    test(`${name} (${arch}): teacher-forced logprobs within 1e-3 of HuggingFace, argmax and hidden states`, () => {
      const model = TestModel.load(dir, { blockSize: 4 });
      try {
        assert.deepEqual(model.config.architectures, [arch]);
        const { topK, cases } = loadCompactReference(dir);
        const V = model.config.vocabSize;
        const results = model.forward(cases.map((c) => [...c.promptIds, ...c.generatedIds]));
        cases.forEach((c, i) => {
          const cmp = compareLogprobs(results[i].logits, V, c, topK, NEAR_TIE);
          assert.ok(cmp.maxLogprobDiff <= 1e-3, `case ${i}: max |Δlogprob| ${cmp.maxLogprobDiff}`);
          assert.deepEqual(cmp.argmaxMismatches, [], `case ${i}: argmax differs at these positions`);
          assert.ok(cmp.decisive >= c.logsumexp.length - 2, `case ${i}: only ${cmp.decisive} decisive positions`);
          const dh = maxAbsDiff(results[i].hidden, c.hidden);
          assert.ok(dh <= 1e-3, `case ${i}: max |Δhidden| ${dh}`);
        });
      } finally {
        model.close();
      }
    });

    test(`${name} (${arch}): greedy tokens match HF alone, batched, chunked and from the prefix cache`, async () => {
      const { topK, cases } = loadCompactReference(dir);
      const run = async (opts: { maxNumBatchedTokens: number; enablePrefixCaching: boolean }, idx: number[], twice = false) => {
        const llm = await LLM.create({ model: dir, tokenizer: TINY_TOKENIZER, useTqdm: false, maxModelLen: 96, maxNumSeqs: 4, blockSize: 4, ...opts });
        try {
          const prompts = idx.map((i) => cases[i].prompt);
          const params = idx.map((i) => ({ temperature: 0, maxTokens: cases[i].generatedIds.length, ignoreEos: true }));
          let outs = await llm.generate(prompts, params);
          if (twice) outs = await llm.generate(prompts, params); // prompts now hit the prefix cache
          return outs.map((o) => o.outputs[0].tokenIds);
        } finally {
          llm.close();
        }
      };
      const all = cases.map((_, i) => i);
      const batched = await run({ maxNumBatchedTokens: 256, enablePrefixCaching: false }, all);
      let compared = 0;
      cases.forEach((c, i) => {
        const n = decisivePrefix(c, topK, NEAR_TIE);
        assert.deepEqual(batched[i].slice(0, n), c.generatedIds.slice(0, n), `case ${i}: first ${n} tokens`);
        compared += n;
      });
      const total = cases.reduce((a, c) => a + c.generatedIds.length, 0);
      assert.ok(compared >= total / 2, `only ${compared} of ${total} reference tokens are decisive`);
      for (const i of aloneEvery ? all : [cases.length - 1]) {
        assert.deepEqual((await run({ maxNumBatchedTokens: 256, enablePrefixCaching: false }, [i]))[0], batched[i], `case ${i} alone vs batched`);
      }
      assert.deepEqual(await run({ maxNumBatchedTokens: 5, enablePrefixCaching: false }, all), batched, 'chunked prefill (5 tokens a step)');
      assert.deepEqual(await run({ maxNumBatchedTokens: 7, enablePrefixCaching: true }, all, true), batched, 'prefix-cache hits, chunked');
    });
  }
}
