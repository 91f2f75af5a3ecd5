// Embeddings (pooling) against HuggingFace's final normed hidden states.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LLM } from '../../src/index.js';
import { loadCompactReference } from '../helpers/compact_reference.js';

function relErr(a: number[], b: Float64Array | number[]): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}

for (const [name, dir] of [['tiny-llama-kjv', 'models/tiny-llama-kjv'], ['qwen2-bf16', 'tests/fixtures/qwen2-bf16']] as const) {
  test(`${name}: last and mean pooling equal HF hidden states within 1e-4 relative`, async () => {
    const ref = loadCompactReference(name === 'tiny-llama-kjv' ? 'tests/fixtures/tiny-llama-kjv' : dir).cases;
    // A small token budget so that long prompts are pooled across prefill chunks.
    const llm = await LLM.create({ model: dir, tokenizer: 'models/tiny-llama-kjv', useTqdm: false, maxNumBatchedTokens: 8 });
    try {
      const H = llm.engine.modelConfig.hiddenSize;
      const seqs = ref.map((c) => [...c.promptIds, ...c.generatedIds]);
      const last = await llm.embed(seqs.map((s) => ({ promptTokenIds: s })), { pooling: 'last', normalize: false });
      const mean = await llm.embed(seqs.map((s) => ({ promptTokenIds: s })), { pooling: 'mean', normalize: false });
      const normed = await llm.embed({ promptTokenIds: seqs[0] }, { pooling: 'last' });
      ref.forEach((c, i) => {
        const T = seqs[i].length;
        const expectLast = Array.from(c.hidden.subarray((T - 1) * H, T * H));
        const expectMean = new Float64Array(H);
        for (let t = 0; t < T; t++) for (let d = 0; d < H; d++) expectMean[d] += c.hidden[t * H + d] / T;
        assert.equal(last[i].outputs.embedding.length, H);
        assert.ok(relErr(last[i].outputs.embedding, expectLast) <= 1e-4, `case ${i} last: ${relErr(last[i].outputs.embedding, expectLast)}`);
        assert.ok(relErr(mean[i].outputs.embedding, expectMean) <= 1e-4, `case ${i} mean: ${relErr(mean[i].outputs.embedding, expectMean)}`);
      });
      const n = Math.hypot(...normed[0].outputs.embedding);
      assert.ok(Math.abs(n - 1) < 1e-6);
      // Mean pooling must not be fooled by the prefix cache (the same prompts again).
      const again = await llm.embed({ promptTokenIds: seqs[1] }, { pooling: 'mean', normalize: false });
      assert.deepEqual(again[0].outputs.embedding, mean[1].outputs.embedding);
      const core = llm.engine.engineCore;
      assert.equal(core.numFreeBlocks, core.cacheConfig.numBlocks - 1);
    } finally {
      llm.close();
    }
  });
}
