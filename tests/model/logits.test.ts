// Teacher-forced logits against HuggingFace's (fixtures made with transformers in fp32).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TestModel } from '../helpers/forward.js';
import { argmaxRows, loadReference, maxAbsDiff } from '../helpers/reference.js';

const MODELS: [name: string, modelDir: string, refDir: string][] = [
  ['tiny-llama-kjv', 'models/tiny-llama-kjv', 'tests/fixtures/tiny-llama-kjv'],
  ['llama-gqa-fp16', 'tests/fixtures/llama-gqa-fp16', 'tests/fixtures/llama-gqa-fp16'],
];

for (const [name, modelDir, refDir] of MODELS) {
  test(`${name}: logits match HuggingFace within 1e-3, identical argmax`, () => {
    const model = TestModel.load(modelDir);
    try {
      const cases = loadReference(refDir);
      const V = model.config.vocabSize;
      // All cases in one batch: the paged attention must keep sequences apart.
      const results = model.forward(cases.map((c) => [...c.promptIds, ...c.generatedIds]));
      cases.forEach((c, i) => {
        const d = maxAbsDiff(results[i].logits, c.logits);
        assert.ok(d <= 1e-3, `case ${i}: max |Δlogit| ${d}`);
        assert.deepEqual(argmaxRows(results[i].logits, V), argmaxRows(c.logits, V), `case ${i}: argmax differs`);
      });
      // Alone gives the same numbers as in the batch.
      const alone = model.forward([[...cases[1].promptIds, ...cases[1].generatedIds]])[0];
      assert.ok(maxAbsDiff(alone.logits, results[1].logits) <= 1e-5);
    } finally {
      model.close();
    }
  });
}
