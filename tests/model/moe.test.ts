// Mixture-of-experts families (issue 19: Qwen3-MoE, Mixtral, Qwen2-MoE) against their
// HuggingFace fixtures (transformers, fp32 eager, experts stored in the Hub's
// per-expert layout): teacher-forced logprobs within 1e-3 at every position, argmax,
// final hidden states, greedy LLM.generate alone / batched / chunked / from the prefix
// cache; the routing config rules; a public config built with dummy weights.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadModelConfig } from '../../src/config/model_config.js';
import type { ModelConfig } from '../../src/config/types.js';
import { DummyWeightSource } from '../../src/model_executor/model_loader/index.js';
import { qwenSparseLayers, SparseMoeBlock } from '../../src/model_executor/models/moe.js';
import { buildModel } from '../../src/model_executor/models/registry.js';
import { layerSlidingWindows } from '../../src/model_executor/models/utils.js';
import type { DecoderForCausalLM } from '../../src/model_executor/models/decoder.js';
import { WeightLoader } from '../../src/model_executor/weight_loader.js';
import { loadNative } from '../../src/native/index.js';
import { compactFixtureTests, type CompactFixture } from '../helpers/compact_fixture_tests.js';
import { TestModel } from '../helpers/forward.js';
import { loadCompactReference } from '../helpers/compact_reference.js';


export const MOE_FIXTURES: CompactFixture[] = [
  { dir: 'tests/fixtures/qwen3moe-bf16', arch: 'Qwen3MoeForCausalLM' },
  { dir: 'tests/fixtures/mixtral-bf16', arch: 'MixtralForCausalLM' },
  { dir: 'tests/fixtures/qwen2moe-bf16', arch: 'Qwen2MoeForCausalLM' },
];

compactFixtureTests(MOE_FIXTURES, { aloneEvery: true });

test('MoE config rules: sparse layers (decoder_sparse_step, mlp_only_layers), windows, q/k/v bias', () => {
  const q3 = loadModelConfig('tests/fixtures/qwen3moe-bf16');
  assert.deepEqual(qwenSparseLayers(q3), [true, false, true]); // mlp_only_layers [1]
  const q2 = loadModelConfig('tests/fixtures/qwen2moe-bf16');
  assert.deepEqual(qwenSparseLayers(q2), [false, true, false, true]); // decoder_sparse_step 2
  assert.equal(q2.attentionBias, true);
  assert.deepEqual(layerSlidingWindows(q2), [null, null, null, null]);
  const mx = loadModelConfig('tests/fixtures/mixtral-bf16');
  assert.deepEqual(layerSlidingWindows(mx), [8, 8]);
  for (const c of loadCompactReference('tests/fixtures/mixtral-bf16').cases) {
    assert.ok(c.sensitivity.max_abs_diff_without_sliding_window > 0.1, 'the window matters in the Mixtral fixture');
  }
});

test('MoE families: Qwen3-30B-A3B builds from its public config with dummy weights; bad routing keys fail at load', () => {
  const ops = loadNative('cpu');
  ops.init(0, 1);
  const build = (config: ModelConfig) => {
    const loader = new WeightLoader(ops, new DummyWeightSource(config.dtype), null);
    try {
      const m = buildModel(config, loader) as DecoderForCausalLM;
      return m.layers.map((l) => l.mlp instanceof SparseMoeBlock);
    } finally {
      loader.disposeAll();
    }
  };
  const big = loadModelConfig('benchmarks/configs/qwen3-30b-a3b');
  assert.equal(big.architectures[0], 'Qwen3MoeForCausalLM');
  // A cut of the real shapes (hidden 2048, top 8, moe_intermediate_size 768, 32/4 heads x 128): one layer,
  // 16 of the 128 experts, a small vocabulary, so that the dummy weights stay ~150 MB on the CPU.
  const cut = { ...big, numHiddenLayers: 1, vocabSize: 1024, hfConfig: { ...big.hfConfig, num_experts: 16 } };
  assert.deepEqual(build(cut), [true]);
  const q3 = loadModelConfig('tests/fixtures/qwen3moe-bf16');
  assert.throws(() => build({ ...q3, hfConfig: { ...q3.hfConfig, num_experts_per_tok: 9 } }), /num_experts_per_tok 9 must be in \[1, 8\]/);
  assert.throws(() => build({ ...q3, hfConfig: { ...q3.hfConfig, moe_intermediate_size: undefined } }), /moe_intermediate_size/);
});

/** A safetensors file's tensors: name -> dtype, shape, bytes. */
function readSafetensors(path: string): Map<string, { dtype: string; shape: number[]; bytes: Buffer }> {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, { dtype: string; shape: number[]; bytes: Buffer }>();
  for (const [name, t] of Object.entries(header)) {
    if (name !== '__metadata__') out.set(name, { dtype: t.dtype, shape: t.shape, bytes: buf.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]) });
  }
  return out;
}

function writeSafetensors(path: string, tensors: Map<string, { dtype: string; shape: number[]; bytes: Buffer }>): void {
  const header: Record<string, unknown> = {};
  let off = 0;
  for (const [name, t] of tensors) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.bytes.length] };
    off += t.bytes.length;
  }
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(path, Buffer.concat([len, json, ...[...tensors.values()].map((t) => t.bytes)]));
}

test('Mixtral: transformers 5\'s stacked experts (mlp.experts.gate_up_proj / down_proj) give the same logits as the Hub layout', () => {
  const src = 'tests/fixtures/mixtral-bf16';
  const hub = readSafetensors(join(src, 'model.safetensors'));
  const cfg = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8'));
  const [E, F] = [cfg.num_local_experts as number, cfg.intermediate_size as number];
  const stacked = new Map<string, { dtype: string; shape: number[]; bytes: Buffer }>();
  for (const [name, t] of hub) {
    const m = /^(model\.layers\.\d+)\.block_sparse_moe\.(.*)$/.exec(name);
    if (!m) stacked.set(name, t);
    else if (m[2] === 'gate.weight') stacked.set(`${m[1]}.mlp.gate.weight`, t);
    else if (m[2] === 'experts.0.w1.weight') {
      const part = (e: number, w: string) => hub.get(`${m[1]}.block_sparse_moe.experts.${e}.${w}.weight`)!.bytes;
      const h = t.shape[1];
      const e = Array.from({ length: E }, (_, i) => i);
      stacked.set(`${m[1]}.mlp.experts.gate_up_proj`, { dtype: t.dtype, shape: [E, 2 * F, h], bytes: Buffer.concat(e.flatMap((i) => [part(i, 'w1'), part(i, 'w3')])) });
      stacked.set(`${m[1]}.mlp.experts.down_proj`, { dtype: t.dtype, shape: [E, h, F], bytes: Buffer.concat(e.map((i) => part(i, 'w2'))) });
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'vllm-ts-moe-'));
  try {
    copyFileSync(join(src, 'config.json'), join(dir, 'config.json'));
    writeSafetensors(join(dir, 'model.safetensors'), stacked);
    const ids = [[...loadCompactReference(src).cases[2].promptIds]];
    const logitsOf = (d: string) => {
      const m = TestModel.load(d, { blockSize: 4 });
      try {
        return m.forward(ids)[0].logits;
      } finally {
        m.close();
      }
    };
    const a = logitsOf(src), b = logitsOf(dir);
    assert.equal(a.length, b.length);
    assert.deepEqual(new Uint32Array(b.buffer, b.byteOffset, b.length), new Uint32Array(a.buffer, a.byteOffset, a.length));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
