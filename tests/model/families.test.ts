// The model families beyond Llama against their HuggingFace fixtures (transformers,
// fp32 eager): teacher-forced logits (whole rows rebuilt from HF's hidden state and the
// lm_head, see tests/helpers/compact_reference.ts), argmax at every position, HF's
// top-k logprobs and hidden states, and greedy generation through LLM.generate.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadModelConfig } from '../../src/config/model_config.js';
import type { ModelConfig } from '../../src/config/types.js';
import { LLM } from '../../src/index.js';
import { DummyWeightSource } from '../../src/model_executor/model_loader/index.js';
import { embedNormalizer } from '../../src/model_executor/models/gemma.js';
import { buildModel, supportedArchitectures } from '../../src/model_executor/models/registry.js';
import { layerSlidingWindows } from '../../src/model_executor/models/utils.js';
import { WeightLoader } from '../../src/model_executor/weight_loader.js';
import { DType, loadNative } from '../../src/native/index.js';
import { TestModel } from '../helpers/forward.js';
import { argmaxRows, compareLogprobs, decisivePrefix, loadCompactReference, maxAbsDiff, rebuildLogits } from '../helpers/compact_reference.js';

/** The fixtures made without a tokenizer of their own use the tiny model's (the same BPE). */
const TINY_TOKENIZER = 'models/tiny-llama-kjv';
/** Top-1 minus top-2 reference logit below which greedy may legitimately pick either. */
const NEAR_TIE = 1e-3;

const FIXTURES: { dir: string; arch: string; blockSize?: number }[] = [
  { dir: 'tests/fixtures/qwen2-bf16', arch: 'Qwen2ForCausalLM' },
  { dir: 'tests/fixtures/gemma-fp32', arch: 'GemmaForCausalLM' },
  { dir: 'tests/fixtures/gpt2-fp32', arch: 'GPT2LMHeadModel' },
  // Blocks of 4 tokens: the 8-token window spans several cache blocks.
  { dir: 'tests/fixtures/mistral-swa-fp16', arch: 'MistralForCausalLM', blockSize: 4 },
  { dir: 'tests/fixtures/qwen3-bf16', arch: 'Qwen3ForCausalLM' },
  { dir: 'tests/fixtures/llama-mqa-hd128-bf16', arch: 'LlamaForCausalLM' },
];

for (const { dir, arch, blockSize } of FIXTURES) {
  const name = dir.split('/').pop()!;

  test(`${name} (${arch}): teacher-forced logits within 1e-3 of HuggingFace, argmax identical, hidden states`, () => {
    const model = TestModel.load(dir, { blockSize });
    try {
      assert.deepEqual(model.config.architectures, [arch]);
      const { topK, cases } = loadCompactReference(dir);
      const full = rebuildLogits(dir, cases, topK);
      const V = model.config.vocabSize;
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
    } finally {
      model.close();
    }
  });

  test(`${name} (${arch}): greedy LLM.generate reproduces HuggingFace's continuation`, async () => {
    const { topK, cases } = loadCompactReference(dir);
    const tokenizer = existsSync(join(dir, 'tokenizer.json')) ? undefined : TINY_TOKENIZER;
    const llm = await LLM.create({ model: dir, tokenizer, useTqdm: false, maxModelLen: 64, maxNumSeqs: 4, blockSize });
    try {
      const params = cases.map((c) => ({ temperature: 0, maxTokens: c.generatedIds.length }));
      const outs = await llm.generate(cases.map((c) => c.prompt), params);
      let compared = 0;
      outs.forEach((o, i) => {
        const c = cases[i];
        assert.deepEqual(o.promptTokenIds, c.promptIds, `case ${i}: prompt ids`);
        const n = decisivePrefix(c, topK, NEAR_TIE);
        assert.deepEqual(o.outputs[0].tokenIds.slice(0, n), c.generatedIds.slice(0, n), `case ${i}: first ${n} tokens`);
        compared += n;
      });
      const total = cases.reduce((a, c) => a + c.generatedIds.length, 0);
      assert.ok(compared >= total / 2, `only ${compared} of ${total} reference tokens are decisive`);
    } finally {
      llm.close();
    }
  });
}

test('mistral-swa-fp16: the fixture is sensitive to the window, and chunked prefill keeps the greedy tokens', async () => {
  const dir = 'tests/fixtures/mistral-swa-fp16';
  const ref = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8'));
  // HF's logits without the window differ by more than the tolerance: ignoring it cannot pass.
  for (const c of ref.cases) assert.ok(c.max_abs_diff_without_sliding_window > 0.1);
  const { cases } = loadCompactReference(dir);
  const prompts = cases.map((c) => ({ promptTokenIds: [...c.promptIds, ...c.generatedIds.slice(0, 8)] }));
  const params = { temperature: 0, maxTokens: 6, ignoreEos: true };
  const run = async (maxNumBatchedTokens: number) => {
    const llm = await LLM.create({
      model: dir, tokenizer: TINY_TOKENIZER, useTqdm: false, maxModelLen: 64, maxNumSeqs: 4, blockSize: 4,
      maxNumBatchedTokens, enablePrefixCaching: false,
    });
    try {
      return (await llm.generate(prompts, params)).map((o) => o.outputs[0].tokenIds);
    } finally {
      llm.close();
    }
  };
  assert.deepEqual(await run(3), await run(64));
});

test('every family is registered', () => {
  const archs = supportedArchitectures();
  for (const a of ['LlamaForCausalLM', 'MistralForCausalLM', 'Qwen2ForCausalLM', 'Qwen3ForCausalLM', 'GemmaForCausalLM', 'GPT2LMHeadModel']) {
    assert.ok(archs.includes(a), a);
  }
});

test("Gemma's sqrt(hidden) normalizer is rounded to the activation dtype, as HF does", () => {
  assert.equal(embedNormalizer(3072, null), Math.fround(Math.sqrt(3072)));
  assert.equal(embedNormalizer(3072, DType.BF16), 55.5); // 55.4256 to 8 significant bits
  assert.equal(embedNormalizer(2048, DType.BF16), 45.25); // 45.2548
  assert.equal(embedNormalizer(2048, DType.F16), 45.25); // 45.2548 to 11 bits: steps of 1/32
});

/** A fixture's config with config.json keys changed. */
function withHf(dir: string, hf: Record<string, unknown>, patch: Partial<ModelConfig> = {}): ModelConfig {
  const c = loadModelConfig(dir);
  return { ...c, ...patch, hfConfig: { ...c.hfConfig, ...hf } };
}

test('per-layer sliding windows: layer_types, then use_sliding_window + max_window_layers, then sliding_window', () => {
  const qwen2 = 'tests/fixtures/qwen2-bf16';
  assert.deepEqual(layerSlidingWindows(loadModelConfig(qwen2)), [null, null]);
  const mixed = withHf(qwen2, { layer_types: ['full_attention', 'sliding_attention'], use_sliding_window: true }, { slidingWindow: 16 });
  assert.deepEqual(layerSlidingWindows(mixed), [null, 16]);
  const byMaxLayers = withHf(qwen2, { layer_types: undefined, use_sliding_window: true, max_window_layers: 1 }, { slidingWindow: 16 });
  assert.deepEqual(layerSlidingWindows(byMaxLayers), [null, 16]);
  // Qwen3 configs written by older transformers carry sliding_window with use_sliding_window false.
  const off = withHf('tests/fixtures/qwen3-bf16', { layer_types: undefined, use_sliding_window: false, sliding_window: 4096 }, { slidingWindow: 4096 });
  assert.deepEqual(layerSlidingWindows(off), [null, null]);
  assert.deepEqual(layerSlidingWindows(loadModelConfig('tests/fixtures/mistral-swa-fp16')), [8, 8]);
  assert.throws(() => layerSlidingWindows(withHf(qwen2, { layer_types: ['full_attention'] })), /layer_types has 1 entries for 2 layers/);
});

test('unsupported variants fail at load with a message naming the setting', () => {
  const ops = loadNative('cpu');
  ops.init(0, 1);
  const build = (config: ModelConfig) => {
    const loader = new WeightLoader(ops, new DummyWeightSource(config.dtype), null);
    try {
      buildModel(config, loader);
    } finally {
      loader.disposeAll();
    }
  };
  const mixed = withHf('tests/fixtures/qwen2-bf16', { layer_types: ['full_attention', 'sliding_attention'], use_sliding_window: true }, { slidingWindow: 16 });
  assert.throws(() => build(mixed), /Qwen2ForCausalLM with layers that mix sliding-window and full attention/);
  // Qwen3 has its own layers: a window per layer is fine.
  build(withHf('tests/fixtures/qwen3-bf16', { layer_types: ['full_attention', 'sliding_attention'], use_sliding_window: true }, { slidingWindow: 16 }));
  assert.throws(() => build(withHf('tests/fixtures/gpt2-fp32', {}, { hiddenAct: 'relu' })), /GPT-2 activation_function 'relu' is not supported/);
});

test('--load-format dummy builds every family from its config alone', () => {
  const ops = loadNative('cpu');
  ops.init(0, 1);
  for (const { dir, arch } of FIXTURES) {
    const config = loadModelConfig(dir);
    const loader = new WeightLoader(ops, new DummyWeightSource(config.dtype), null);
    try {
      const model = buildModel(config, loader);
      assert.equal(model.constructor.name, arch);
      assert.ok(loader.loadedBytes > 0);
    } finally {
      loader.disposeAll();
    }
  }
});
