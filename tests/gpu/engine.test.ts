// The engine on CUDA against HuggingFace: teacher-forced logits of every fixture
// (whole rows rebuilt from HF's hidden state and lm_head, tests/helpers/compact_reference.ts)
// model (bf16/fp16, so a tolerance is reported rather than asserted tightly),
// greedy text of tiny-llama-kjv alone and in a 64-prompt batch with chunked
// prefill and preemption, and an entirely free block pool afterwards.
// Results go to $VLLM_TS_GPU_REPORT/engine.json when that folder is set.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gpuSkipReason } from './helpers.js';
import { LLM, type LLMOptions } from '../../src/index.js';
import { loadNative } from '../../src/native/index.js';
import { TestModel } from '../helpers/forward.js';
import { mixedPrompts } from '../helpers/prompts.js';
import { argmaxRows, loadCompactReference, rebuildLogits } from '../helpers/compact_reference.js';

const skip = gpuSkipReason();
const skipSampling = skip || (loadNative('cuda').missing.has('sample') ? 'vt_sample not in this build' : false);
const report: Record<string, unknown> = {};
const save = () => {
  const dir = process.env.VLLM_TS_GPU_REPORT;
  if (dir) writeFileSync(join(dir, 'engine.json'), JSON.stringify(report, null, 2));
};

const FIXTURES: [string, string, string?][] = [
  ['tiny-llama-kjv', 'models/tiny-llama-kjv', 'tests/fixtures/tiny-llama-kjv'],
  ['llama-gqa-fp16', 'tests/fixtures/llama-gqa-fp16'],
  ['qwen2-bf16', 'tests/fixtures/qwen2-bf16'],
  ['gemma-fp32', 'tests/fixtures/gemma-fp32'],
  ['gpt2-fp32', 'tests/fixtures/gpt2-fp32'],
  ['mistral-swa-fp16', 'tests/fixtures/mistral-swa-fp16'],
  ['qwen3-bf16', 'tests/fixtures/qwen3-bf16'],
  ['llama-mqa-hd128-bf16', 'tests/fixtures/llama-mqa-hd128-bf16'],
];

test('teacher-forced logits of every fixture model on CUDA: argmax agreement >= 99%', { skip }, () => {
  const rows: Record<string, unknown>[] = [];
  const offTies: string[] = [];
  let agreeAll = 0;
  let positionsAll = 0;
  for (const [name, dir, refDir] of FIXTURES) {
    const model = TestModel.load(dir, { device: 'cuda' });
    try {
      const { topK, cases } = loadCompactReference(refDir ?? dir);
      const full = rebuildLogits(dir, cases, topK); // HF's rows [T, vocab], checked against its top-k and logsumexp
      const V = model.config.vocabSize;
      const res = model.forward(cases.map((c) => [...c.promptIds, ...c.generatedIds]));
      let maxDelta = 0;
      let agree = 0;
      let positions = 0;
      cases.forEach((_, i) => {
        for (let j = 0; j < full[i].length; j++) maxDelta = Math.max(maxDelta, Math.abs(res[i].logits[j] - full[i][j]));
      });
      cases.forEach((_, i) => {
        const a = argmaxRows(res[i].logits, V);
        const b = argmaxRows(full[i], V);
        a.forEach((x, j) => {
          positions++;
          if (x === b[j]) return void agree++;
          // HF's margin between its top-1 and our pick: a disagreement is only
          // acceptable where that margin is within twice the model's logit error.
          const margin = full[i][j * V + b[j]] - full[i][j * V + x];
          if (margin > 2 * maxDelta) offTies.push(`${name} case ${i} position ${j}: margin ${margin} > 2 x ${maxDelta}`);
        });
      });
      agreeAll += agree;
      positionsAll += positions;
      rows.push({ model: name, act: model.actName, maxAbsDeltaLogit: +maxDelta.toFixed(4), argmaxAgreement: `${agree}/${positions}` });
    } finally {
      model.close();
    }
  }
  console.table(rows);
  report.logits = { rows, agreement: agreeAll / positionsAll };
  save();
  assert.ok(agreeAll / positionsAll >= 0.99, `argmax agreement ${agreeAll}/${positionsAll}`);
  assert.deepEqual(offTies, [], 'every disagreement is at a near tie of the reference (margin within 2x the max |Δlogit|)');
});

async function withLLM<T>(opts: Partial<LLMOptions>, fn: (llm: LLM) => Promise<T>): Promise<T> {
  const llm = await LLM.create({ model: 'models/tiny-llama-kjv', device: 'cuda', useTqdm: false, ...opts });
  try {
    const r = await fn(llm);
    const core = llm.engine.engineCore;
    assert.equal(core.numFreeBlocks, core.cacheConfig.numBlocks - 1, 'every KV block is free again');
    return r;
  } finally {
    llm.close();
  }
}

test('tiny-llama-kjv greedy text on CUDA equals HF, alone and among 64 prompts with chunking and preemption', { skip }, async () => {
  const { cases } = loadCompactReference('tests/fixtures/tiny-llama-kjv');
  const params = { temperature: 0, maxTokens: 64 };
  const alone = await withLLM({}, (llm) => llm.generate(cases.map((c) => c.prompt), params));
  alone.forEach((o, i) => assert.deepEqual(o.outputs[0].tokenIds, cases[i].generatedIds, `case ${i} alone`));
  const others = mixedPrompts(60, 3, 150, 4096).map((p) => ({ promptTokenIds: p }));
  const prompts = [...cases.map((c) => ({ promptTokenIds: c.promptIds })), ...others];
  const blockBytes = 2 * 8 * 16 * 2 * 64 * 2; // bf16 KV
  const res = await withLLM({ maxModelLen: 256, maxNumBatchedTokens: 32, kvCacheMemoryBytes: 24 * blockBytes }, async (llm) => {
    const outs = await llm.generate(prompts, prompts.map((_, i) => (i < 4 ? params : { temperature: 0, maxTokens: 12, ignoreEos: true })));
    return { outs, preemptions: llm.engine.engineCore.scheduler.totalNumPreemptions };
  });
  assert.ok(res.preemptions > 0, 'the small cache forced preemptions');
  res.outs.slice(0, 4).forEach((o, i) => assert.deepEqual(o.outputs[0].tokenIds, cases[i].generatedIds, `case ${i} in the batch`));
  report.greedy = { cases: cases.length, batch: prompts.length, preemptions: res.preemptions, identical: true };
  save();
});

test('sampling on the device: seeded requests reproduce; logprobs close to the CPU', { skip: skipSampling }, async () => {
  const p = { temperature: 0.8, topP: 0.9, topK: 50, seed: 7, maxTokens: 24, ignoreEos: true, logprobs: 3 };
  await withLLM({}, async (llm) => {
    const [a] = await llm.generate('And God said', p);
    const [b] = await llm.generate(['In the beginning', 'And God said', 'Amen'], [{ ...p, seed: 1 }, p, { ...p, seed: 2 }]).then((r) => [r[1]]);
    assert.deepEqual(b.outputs[0].tokenIds, a.outputs[0].tokenIds);
    assert.equal(a.outputs[0].logprobs!.length, 24);
    for (const pos of a.outputs[0].logprobs!) assert.ok(Object.keys(pos).length >= 3);
  });
});
