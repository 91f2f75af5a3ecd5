// Teacher-forced logits against HuggingFace's (fixtures made with transformers in fp32).
// The references are compact (tests/helpers/compact_reference.ts): HF's full rows are
// rebuilt from its final hidden state and the model's lm_head, and the rebuild is
// checked against the top-k logits and the logsumexp HF stored.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TestModel } from '../helpers/forward.js';
import { argmaxRows, compareLogprobs, loadCompactReference, maxAbsDiff, rebuildLogits } from '../helpers/compact_reference.js';

const MODELS: [name: string, modelDir: string, refDir: string][] = [
  ['tiny-llama-kjv', 'models/tiny-llama-kjv', 'tests/fixtures/tiny-llama-kjv'],
  ['llama-gqa-fp16', 'tests/fixtures/llama-gqa-fp16', 'tests/fixtures/llama-gqa-fp16'],
];

for (const [name, modelDir, refDir] of MODELS) {
  test(`${name}: logits match HuggingFace within 1e-3, identical argmax, hidden states within 1e-3`, () => {
    const model = TestModel.load(modelDir);
    try {
      const { topK, cases } = loadCompactReference(refDir);
      const full = rebuildLogits(modelDir, cases, topK);
      const V = model.config.vocabSize;
      // All cases in one batch: the paged attention must keep sequences apart.
      const results = model.forward(cases.map((c) => [...c.promptIds, ...c.generatedIds]));
      cases.forEach((c, i) => {
        const d = maxAbsDiff(results[i].logits, full[i]);
        assert.ok(d <= 1e-3, `case ${i}: max |Δlogit| ${d} over the whole vocabulary`);
        assert.deepEqual(argmaxRows(results[i].logits, V), argmaxRows(full[i], V), `case ${i}: argmax differs`);
        const cmp = compareLogprobs(results[i].logits, V, c, topK, 0);
        assert.ok(cmp.maxLogprobDiff <= 1e-3, `case ${i}: max |Δlogprob| ${cmp.maxLogprobDiff} over HF's top-${topK}`);
        const dh = maxAbsDiff(results[i].hidden, c.hidden);
        assert.ok(dh <= 1e-3, `case ${i}: max |Δhidden| ${dh}`);
      });
      // Alone gives the same numbers as in the batch.
      const alone = model.forward([[...cases[1].promptIds, ...cases[1].generatedIds]])[0];
      assert.ok(maxAbsDiff(alone.logits, results[1].logits) <= 1e-5);
    } finally {
      model.close();
    }
  });
}
