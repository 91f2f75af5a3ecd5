// The 2026 families (issue 16: Gemma 2, Gemma 3, Phi-3/4-mini, OLMo 2, Granite,
// SmolLM3) against their HuggingFace fixtures (transformers, fp32 eager): teacher-forced
// logprobs within 1e-3 at every position (HF's top-24 tokens of each), argmax, final
// hidden states, greedy LLM.generate, and the same greedy tokens alone / batched /
// chunked / from the prefix cache with blocks smaller than the sliding window.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadModelConfig } from '../../src/config/model_config.js';
import type { ModelConfig } from '../../src/config/types.js';
import { DummyWeightSource } from '../../src/model_executor/model_loader/index.js';
import { buildModel } from '../../src/model_executor/models/registry.js';
import { layerSlidingWindows } from '../../src/model_executor/models/utils.js';
import { ropeLayers } from '../../src/model_executor/models/smollm3.js';
import { buildCosSinCache } from '../../src/model_executor/layers/rotary_embedding.js';
import { WeightLoader } from '../../src/model_executor/weight_loader.js';
import { loadNative } from '../../src/native/index.js';
import { compactFixtureTests, type CompactFixture } from '../helpers/compact_fixture_tests.js';
import { loadCompactReference } from '../helpers/compact_reference.js';


export const NEW_FIXTURES: CompactFixture[] = [
  { dir: 'tests/fixtures/gemma2-bf16', arch: 'Gemma2ForCausalLM' },
  { dir: 'tests/fixtures/gemma3-bf16', arch: 'Gemma3ForCausalLM' },
  { dir: 'tests/fixtures/phi3-bf16', arch: 'Phi3ForCausalLM' },
  { dir: 'tests/fixtures/olmo2-bf16', arch: 'Olmo2ForCausalLM' },
  { dir: 'tests/fixtures/granite-bf16', arch: 'GraniteForCausalLM' },
  { dir: 'tests/fixtures/smollm3-bf16', arch: 'SmolLM3ForCausalLM' },
];

compactFixtureTests(NEW_FIXTURES);

test('the features each fixture is about change its HF logits by more than the tolerance', () => {
  const need: Record<string, string[]> = {
    'gemma2-bf16': ['max_abs_diff_without_sliding_window', 'max_abs_diff_without_attn_softcap', 'max_abs_diff_without_final_softcap'],
    'gemma3-bf16': ['max_abs_diff_without_sliding_window'],
  };
  for (const [name, keys] of Object.entries(need)) {
    for (const c of loadCompactReference(`tests/fixtures/${name}`).cases) {
      for (const k of keys) assert.ok(c.sensitivity[k] > 0.1, `${name}: ${k} = ${c.sensitivity[k]}`);
    }
  }
  // The long prompt is longer than the window and spans several blocks of 4.
  const long = loadCompactReference('tests/fixtures/gemma2-bf16').cases[2];
  assert.ok(long.promptIds.length > 4 * 8);
});

test('per-family config rules: Gemma 2/3 layer patterns, SmolLM3 NoPE layers, Phi-3 longrope', () => {
  const g2 = loadModelConfig('tests/fixtures/gemma2-bf16');
  assert.deepEqual(layerSlidingWindows(g2), [8, null, 8]);
  const g3 = loadModelConfig('tests/fixtures/gemma3-bf16');
  assert.deepEqual(layerSlidingWindows(g3), [8, 8, null, 8]);
  assert.deepEqual(ropeLayers(loadModelConfig('tests/fixtures/smollm3-bf16')), [true, true, false]);
  const phi = loadModelConfig('tests/fixtures/phi3-bf16');
  assert.equal(phi.rope?.type, 'longrope');
  assert.equal(phi.rope?.partialRotaryFactor, 0.75);
  assert.equal(phi.rope?.originalMaxPositionEmbeddings, 64);
  // HF: attention_factor = sqrt(1 + ln(256 / 64) / ln(64)).
  assert.ok(Math.abs((phi.rope?.attentionFactor ?? 0) - Math.sqrt(1 + Math.log(4) / Math.log(64))) < 1e-12);
  // Short factors below the original length, long ones from there on (vLLM's rule).
  const table = buildCosSinCache(phi.rope!, 12, 80);
  const angle = (p: number, i: number) => Math.atan2(table[p * 12 + 6 + i], table[p * 12 + i]);
  const invShort = 1 / (phi.rope!.shortFactor![5] * Math.pow(10000, 10 / 12));
  const invLong = 1 / (phi.rope!.longFactor![5] * Math.pow(10000, 10 / 12));
  assert.ok(Math.abs(angle(10, 5) - 10 * invShort) < 1e-5);
  assert.ok(Math.abs(angle(70, 5) - 70 * invLong) < 1e-5);
});

/** A fixture's config with config.json keys changed. */
function withHf(dir: string, hf: Record<string, unknown>): ModelConfig {
  const c = loadModelConfig(dir);
  return { ...c, hfConfig: { ...c.hfConfig, ...hf } };
}

test('new families: dummy weights from the config alone; unsupported settings fail at load', () => {
  const ops = loadNative('cpu');
  ops.init(0, 1);
  const build = (config: ModelConfig) => {
    const loader = new WeightLoader(ops, new DummyWeightSource(config.dtype), null);
    try {
      return buildModel(config, loader).constructor.name;
    } finally {
      loader.disposeAll();
    }
  };
  for (const { dir, arch } of NEW_FIXTURES) assert.equal(build(loadModelConfig(dir)), arch);
  // Older Gemma configs without layer_types: HF's default patterns.
  const g2 = withHf('tests/fixtures/gemma2-bf16', { layer_types: undefined });
  assert.equal(build(g2), 'Gemma2ForCausalLM');
  assert.throws(() => build(withHf('tests/fixtures/gemma3-bf16', { use_bidirectional_attention: true })),
    /Gemma3ForCausalLM: config.json use_bidirectional_attention=true is not supported/);
  assert.throws(() => build(withHf('tests/fixtures/smollm3-bf16', { no_rope_layers: [1, 0] })), /no_rope_layers has 2 entries for 3 layers/);
  assert.throws(() => build(withHf('tests/fixtures/phi3-bf16', { lm_head_bias: true })), /Phi3ForCausalLM: config.json lm_head_bias=true is not supported/);
  assert.throws(() => build({ ...loadModelConfig('tests/fixtures/gemma2-bf16'), hiddenAct: 'relu' }), /unsupported hidden_act 'relu'/);
  const badRope = loadModelConfig('tests/fixtures/phi3-bf16');
  assert.throws(() => build({ ...badRope, rope: { ...badRope.rope!, shortFactor: [1, 2] } }), /short_factor has 2 entries; rotary dim 12 needs 6/);
});
