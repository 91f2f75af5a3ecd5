// Offline generation end to end on the tiny model: HF's greedy continuations,
// batch invariance under chunking and preemption, and no leaked KV blocks.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { LLM, type LLMOptions } from '../../src/index.js';
import { loadCompactReference, rebuildLogits, type CompactCase } from '../helpers/compact_reference.js';
import { mixedPrompts } from '../helpers/prompts.js';

const MODEL = 'models/tiny-llama-kjv';
let cases: CompactCase[];

before(() => {
  cases = loadCompactReference('tests/fixtures/tiny-llama-kjv').cases;
});

async function withLLM<T>(opts: Partial<LLMOptions>, fn: (llm: LLM) => Promise<T>): Promise<T> {
  const llm = await LLM.create({ model: MODEL, useTqdm: false, ...opts });
  try {
    const r = await fn(llm);
    const core = llm.engine.engineCore;
    assert.equal(core.numFreeBlocks, core.cacheConfig.numBlocks - 1, 'every KV block is free again');
    return r;
  } finally {
    llm.close();
  }
}

test('greedy generate reproduces HuggingFace for every reference case', async () => {
  await withLLM({}, async (llm) => {
    const outs = await llm.generate(cases.map((c) => c.prompt), { temperature: 0, maxTokens: 64 });
    outs.forEach((o, i) => {
      assert.deepEqual(o.promptTokenIds, cases[i].promptIds, `case ${i} prompt ids`);
      assert.deepEqual(o.outputs[0].tokenIds, cases[i].generatedIds, `case ${i} tokens`);
      assert.equal(o.outputs[0].finishReason, 'stop');
      assert.equal(o.outputs[0].text, cases[i].generatedText.replace(/<\|[a-z_]+\|>/g, ''));
    });
  });
});

test('generation_config defaults apply unless params are given; maxTokens caps with finish_reason length', async () => {
  await withLLM({}, async (llm) => {
    const d = llm.getDefaultSamplingParams();
    assert.equal(d.temperature, 0.8);
    assert.equal(d.topP, 0.95);
    const [o] = await llm.generate(cases[1].prompt, { temperature: 0, maxTokens: 5 });
    assert.deepEqual(o.outputs[0].tokenIds, cases[1].generatedIds.slice(0, 5));
    assert.equal(o.outputs[0].finishReason, 'length');
  });
});

test('batch invariance: the same greedy tokens alone, among 63 others, chunked, and preempted', async () => {
  const prompts = [...cases.map((c) => c.promptIds), ...mixedPrompts(60, 3, 150, 4096)];
  const params = { temperature: 0, maxTokens: 12, ignoreEos: true };
  const run = (opts: Partial<LLMOptions>, ps: number[][]) =>
    withLLM({ maxModelLen: 256, ...opts }, async (llm) => {
      const outs = await llm.generate(ps.map((p) => ({ promptTokenIds: p })), params);
      return { tokens: outs.map((o) => o.outputs[0].tokenIds), preemptions: llm.engine.engineCore.scheduler.totalNumPreemptions };
    });
  const batched = await run({}, prompts);
  for (const i of [0, 5, 37, 63]) {
    const alone = await run({}, [prompts[i]]);
    assert.deepEqual(alone.tokens[0], batched.tokens[i], `prompt ${i} alone vs batched`);
  }
  const chunked = await run({ maxNumBatchedTokens: 16 }, prompts);
  assert.deepEqual(chunked.tokens, batched.tokens, 'chunked prefill (16-token budget)');
  // 24 blocks of 16 tokens (1 null): a handful of sequences at a time, so requests get preempted.
  const blockBytes = 2 * 8 * 16 * 2 * 64 * 4;
  const preempted = await run({ kvCacheMemoryBytes: 24 * blockBytes, maxNumBatchedTokens: 64 }, prompts);
  assert.ok(preempted.preemptions > 0, 'the small cache forced preemptions');
  assert.deepEqual(preempted.tokens, batched.tokens, 'with preemptions');
});

test('too small a KV cache for one max_model_len sequence is a clear startup error', async () => {
  await assert.rejects(
    LLM.create({ model: MODEL, useTqdm: false, kvCacheMemoryBytes: 1 << 20 }),
    /KV cache budget .* fewer than one sequence of max_model_len=2048/,
  );
});

test('stop strings cut the text and set stop_reason; includeStopStrInOutput keeps it', async () => {
  await withLLM({}, async (llm) => {
    const ref = cases[1]; // " Go, get thee down; for thy people ..."
    const [a, b] = await llm.generate([ref.prompt, ref.prompt], [
      { temperature: 0, maxTokens: 40, stop: ['thee'] },
      { temperature: 0, maxTokens: 40, stop: ['thee'], includeStopStrInOutput: true },
    ]);
    assert.equal(a.outputs[0].text, ' Go, get ');
    assert.equal(a.outputs[0].stopReason, 'thee');
    assert.equal(a.outputs[0].finishReason, 'stop');
    assert.equal(b.outputs[0].text, ' Go, get thee');
    // stop token ids end generation with the id as stop_reason
    const stopId = ref.generatedIds[3];
    const [c] = await llm.generate(ref.prompt, { temperature: 0, maxTokens: 40, stopTokenIds: [stopId] });
    assert.deepEqual(c.outputs[0].tokenIds, ref.generatedIds.slice(0, 4));
    assert.equal(c.outputs[0].stopReason, stopId);
  });
});

test('seeded sampling gives the same tokens whatever else is in the batch; n > 1', async () => {
  await withLLM({}, async (llm) => {
    const p = cases[0].prompt;
    const seeded = { temperature: 1, topP: 0.9, seed: 1234, maxTokens: 20, ignoreEos: true };
    const [alone] = await llm.generate(p, seeded);
    const others = mixedPrompts(12, 5, 60, 4096, 7).map((ids) => ({ promptTokenIds: ids }));
    const mixed = await llm.generate([...others.slice(0, 6), p, ...others.slice(6)],
      [...others.slice(0, 6).map(() => ({ temperature: 1, maxTokens: 20 })), seeded, ...others.slice(6).map(() => ({ temperature: 1, maxTokens: 7 }))]);
    assert.deepEqual(mixed[6].outputs[0].tokenIds, alone.outputs[0].tokenIds);
    const [multi] = await llm.generate(p, { ...seeded, n: 3 });
    assert.equal(multi.outputs.length, 3);
    assert.deepEqual(multi.outputs.map((o) => o.index), [0, 1, 2]);
    assert.deepEqual(multi.outputs[0].tokenIds, alone.outputs[0].tokenIds, 'child 0 keeps the seed');
    assert.notDeepEqual(multi.outputs[1].tokenIds, multi.outputs[0].tokenIds);
  });
});

test('prompt logprobs of llama-gqa-fp16 equal HuggingFace log-softmax within 1e-3', async () => {
  const { topK, cases: ref } = loadCompactReference('tests/fixtures/llama-gqa-fp16');
  // HF's whole rows, rebuilt from its hidden state and the lm_head (checked against its top-k and logsumexp).
  const full = rebuildLogits('tests/fixtures/llama-gqa-fp16', ref.slice(0, 2), topK);
  const llm = await LLM.create({ model: 'tests/fixtures/llama-gqa-fp16', useTqdm: false, maxNumBatchedTokens: 8 });
  try {
    const V = llm.engine.modelConfig.vocabSize;
    for (const [k, c] of ref.slice(0, 2).entries()) {
      const ids = [...c.promptIds, ...c.generatedIds];
      const [o] = await llm.generate({ promptTokenIds: ids }, { temperature: 0, maxTokens: 1, promptLogprobs: 2 });
      const pl = o.promptLogprobs!;
      assert.equal(pl.length, ids.length);
      assert.equal(pl[0], null);
      for (let t = 1; t < ids.length; t++) {
        // The prompt token need not be among HF's top-k: its logit comes from the rebuilt row, the logsumexp as HF stored it.
        const expected = full[k][(t - 1) * V + ids[t]] - c.logsumexp[t - 1];
        const got = pl[t]![ids[t]].logprob;
        assert.ok(Math.abs(got - expected) <= 1e-3, `position ${t}: ${got} vs ${expected}`);
        // The two most likely tokens are HF's top two, with HF's logprobs.
        const top = Object.entries(pl[t]!).filter(([, l]) => l.rank <= 2).sort((a, b) => a[1].rank - b[1].rank);
        assert.equal(top.length, 2, `position ${t}: two ranked tokens`);
        const hf = c.topLogits.subarray((t - 1) * topK, t * topK);
        if (hf[0] - hf[1] < 1e-3 || hf[1] - hf[2] < 1e-3) continue; // a near tie may swap ranks
        top.forEach(([id, l], j) => {
          assert.equal(Number(id), c.topIds[(t - 1) * topK + j], `position ${t}: rank ${j + 1}`);
          assert.ok(Math.abs(l.logprob - (c.topLogits[(t - 1) * topK + j] - c.logsumexp[t - 1])) <= 1e-3, `position ${t}: rank ${j + 1} logprob`);
        });
      }
    }
  } finally {
    llm.close();
  }
});
