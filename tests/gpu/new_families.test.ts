// The issue-16 families on CUDA: teacher-forced logits of each fixture (bf16, so the
// error is reported, and argmax must agree wherever HF's margin is clear of it),
// greedy LLM.generate against HF's continuation up to the first unclear margin,
// and each public config under benchmarks/configs/ loading with dummy weights and
// generating (the real shapes: Gemma 3's 262k vocabulary and head_dim 256, Phi-4-mini's
// partial rotary, Granite's odd vocabulary).
// Results go to $VLLM_TS_GPU_REPORT/new_families.json when that folder is set.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gpuSkipReason } from './helpers.js';
import { LLM } from '../../src/index.js';
import { TestModel } from '../helpers/forward.js';
import { loadCompactReference } from '../helpers/compact_reference.js';

const skip = gpuSkipReason();
const report: Record<string, unknown> = {};
const save = () => {
  const dir = process.env.VLLM_TS_GPU_REPORT;
  if (dir) writeFileSync(join(dir, 'new_families.json'), JSON.stringify(report, null, 2));
};
const TINY_TOKENIZER = 'models/tiny-llama-kjv';
const FIXTURES = ['gemma2-bf16', 'gemma3-bf16', 'phi3-bf16', 'olmo2-bf16', 'granite-bf16', 'smollm3-bf16'];
/** Per fixture: the max |Δlogit| measured by the teacher-forced test (for the greedy test's margin). */
const maxDeltas = new Map<string, number>();

test('new families, teacher-forced on CUDA: max |Δlogit| reported, argmax agrees where HF is clear', { skip }, () => {
  const rows: Record<string, unknown>[] = [];
  const unclear: string[] = [];
  for (const name of FIXTURES) {
    const dir = `tests/fixtures/${name}`;
    const model = TestModel.load(dir, { device: 'cuda', blockSize: 16 });
    try {
      const { topK, cases } = loadCompactReference(dir);
      const V = model.config.vocabSize;
      const res = model.forward(cases.map((c) => [...c.promptIds, ...c.generatedIds]));
      // |Δlogit| over HF's top-k tokens of every position (the reference keeps no others).
      let maxDelta = 0;
      cases.forEach((c, i) => {
        for (let j = 0; j < c.topIds.length; j++) {
          const t = Math.floor(j / topK);
          maxDelta = Math.max(maxDelta, Math.abs(res[i].logits[t * V + c.topIds[j]] - c.topLogits[j]));
        }
      });
      let agree = 0;
      let positions = 0;
      cases.forEach((c, i) => {
        for (let t = 0; t < c.logsumexp.length; t++) {
          const row = res[i].logits.subarray(t * V, (t + 1) * V);
          let best = 0;
          for (let v = 1; v < V; v++) if (row[v] > row[best]) best = v;
          positions++;
          if (best === c.topIds[t * topK]) {
            agree++;
            continue;
          }
          // HF's margin between its top-1 and our pick (at least top-1 minus its k-th when ours is not in its top k).
          const k = Array.from(c.topIds.subarray(t * topK, (t + 1) * topK)).indexOf(best);
          const margin = c.topLogits[t * topK] - c.topLogits[t * topK + (k >= 0 ? k : topK - 1)];
          if (margin > 2 * maxDelta) unclear.push(`${name} case ${i} position ${t}: margin ${margin} > 2 x ${maxDelta}`);
        }
      });
      maxDeltas.set(name, maxDelta);
      rows.push({ model: name, act: model.actName, maxAbsDeltaLogit: +maxDelta.toFixed(4), argmaxAgreement: `${agree}/${positions}` });
    } finally {
      model.close();
    }
  }
  console.table(rows);
  report.teacherForced = rows;
  save();
  assert.deepEqual(unclear, []);
});

test('new families, greedy LLM.generate on CUDA: HF continuation up to the first margin within 2 x |Δlogit|', { skip }, async () => {
  const rows: Record<string, unknown>[] = [];
  for (const name of FIXTURES) {
    const dir = `tests/fixtures/${name}`;
    const { topK, cases } = loadCompactReference(dir);
    const tol = 2 * (maxDeltas.get(name) ?? 0.1);
    const llm = await LLM.create({ model: dir, tokenizer: TINY_TOKENIZER, device: 'cuda', useTqdm: false, maxModelLen: 96, blockSize: 16 });
    try {
      const outs = await llm.generate(cases.map((c) => c.prompt), cases.map((c) => ({ temperature: 0, maxTokens: c.generatedIds.length, ignoreEos: true })));
      let compared = 0;
      outs.forEach((o, i) => {
        const c = cases[i];
        let n = 0;
        while (n < c.generatedIds.length) {
          const t = c.promptIds.length - 1 + n;
          if (c.topLogits[t * topK] - c.topLogits[t * topK + 1] < tol) break;
          n++;
        }
        assert.deepEqual(o.outputs[0].tokenIds.slice(0, n), c.generatedIds.slice(0, n), `${name} case ${i}: first ${n} tokens`);
        compared += n;
      });
      rows.push({ model: name, comparedTokens: compared, of: cases.reduce((a, c) => a + c.generatedIds.length, 0) });
    } finally {
      llm.close();
    }
  }
  console.table(rows);
  report.greedy = rows;
  save();
});

test('public configs of the new families: --load-format dummy loads and generates on CUDA', { skip }, async () => {
  const rows: Record<string, unknown>[] = [];
  for (const name of ['gemma-2-2b', 'gemma-3-1b-it', 'phi-4-mini-instruct', 'olmo-2-0425-1b', 'granite-3.3-2b-instruct', 'smollm3-3b']) {
    const t0 = Date.now();
    const llm = await LLM.create({
      model: `benchmarks/configs/${name}`, tokenizer: TINY_TOKENIZER, device: 'cuda', loadFormat: 'dummy', useTqdm: false,
      maxModelLen: 4096, maxNumSeqs: 8, gpuMemoryUtilization: 0.5,
    });
    try {
      const t1 = Date.now();
      // A 700-token prompt: past Gemma 3's 512-token window, over many KV blocks.
      const long = Array.from({ length: 700 }, (_, i) => 1 + ((i * 37) % 4000));
      const outs = await llm.generate([{ promptTokenIds: long }, 'The capital of France is'], { temperature: 0, maxTokens: 16, ignoreEos: true });
      for (const o of outs) assert.equal(o.outputs[0].tokenIds.length, 16, name);
      rows.push({ config: name, arch: llm.engine.modelConfig.architectures[0], loadMs: t1 - t0, generateMs: Date.now() - t1 });
    } finally {
      llm.close();
    }
  }
  console.table(rows);
  report.dummyConfigs = rows;
  save();
});
