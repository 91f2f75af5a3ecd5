// config.json parsing for every fixture, in both key layouts (torch_dtype / rope_theta /
// rope_scaling and dtype / rope_parameters) and GPT-2's n_* keys.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadGenerationConfig, loadModelConfig } from '../../src/config/model_config.js';

function withConfig(config: Record<string, unknown> | string, fn: (dir: string) => void, generation?: Record<string, unknown>): void {
  const dir = mkdtempSync(join(tmpdir(), 'vt-config-'));
  try {
    writeFileSync(join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
    if (generation) writeFileSync(join(dir, 'generation_config.json'), JSON.stringify(generation));
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const readConfig = (dir: string) => JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;

describe('fixture configs', () => {
  it('tiny-llama-kjv (older keys, tied, eos merged with generation_config)', () => {
    const c = loadModelConfig('models/tiny-llama-kjv');
    assert.equal(c.model, 'models/tiny-llama-kjv');
    assert.deepEqual(c.architectures, ['LlamaForCausalLM']);
    assert.equal(c.modelType, 'llama');
    assert.equal(c.dtype, 'bfloat16');
    assert.equal(c.vocabSize, 4096);
    assert.equal(c.hiddenSize, 256);
    assert.equal(c.intermediateSize, 768);
    assert.equal(c.numHiddenLayers, 8);
    assert.equal(c.numAttentionHeads, 4);
    assert.equal(c.numKeyValueHeads, 2);
    assert.equal(c.headDim, 64);
    assert.equal(c.maxPositionEmbeddings, 2048);
    assert.equal(c.maxModelLen, 2048);
    assert.equal(c.rmsNormEps, 1e-5);
    assert.deepEqual(c.rope, { theta: 10000, type: 'default', partialRotaryFactor: 1 });
    assert.equal(c.tieWordEmbeddings, true);
    assert.equal(c.hiddenAct, 'silu');
    assert.equal(c.attentionBias, false);
    assert.equal(c.slidingWindow, null);
    assert.equal(c.bosTokenId, 0);
    assert.deepEqual(c.eosTokenIds, [0, 2]);
    assert.equal(c.generationConfig.temperature, 0.8);
    assert.equal(c.generationConfig.top_p, 0.95);
    assert.equal(c.hfConfig.pretraining_tp, 1);
  });

  it('llama-gqa-fp16 (llama3 rope scaling in rope_scaling, untied)', () => {
    const c = loadModelConfig('tests/fixtures/llama-gqa-fp16');
    assert.equal(c.dtype, 'float16');
    assert.equal(c.hiddenSize, 192);
    assert.equal(c.numAttentionHeads, 6);
    assert.equal(c.numKeyValueHeads, 2);
    assert.equal(c.headDim, 32);
    assert.equal(c.numHiddenLayers, 3);
    assert.equal(c.intermediateSize, 512);
    assert.equal(c.rmsNormEps, 1e-6);
    assert.deepEqual(c.rope, {
      theta: 500000,
      type: 'llama3',
      factor: 8,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 256,
      partialRotaryFactor: 1,
    });
    assert.equal(c.tieWordEmbeddings, false);
    assert.deepEqual(c.eosTokenIds, [0]);
  });

  it('qwen2-bf16 (dtype + rope_parameters; q/k/v bias without a key; sliding window off)', () => {
    const c = loadModelConfig('tests/fixtures/qwen2-bf16');
    assert.equal(c.modelType, 'qwen2');
    assert.equal(c.dtype, 'bfloat16');
    assert.equal(c.hiddenSize, 128);
    assert.equal(c.numAttentionHeads, 4);
    assert.equal(c.numKeyValueHeads, 2);
    assert.equal(c.headDim, 32);
    assert.equal(c.intermediateSize, 384);
    assert.deepEqual(c.rope, { theta: 1e6, type: 'default', partialRotaryFactor: 1 });
    assert.equal(c.attentionBias, true);
    assert.equal(c.tieWordEmbeddings, true);
    assert.equal(c.slidingWindow, null);
  });

  it('gemma-fp32 (head_dim != hidden/heads, MQA, hidden_activation)', () => {
    const c = loadModelConfig('tests/fixtures/gemma-fp32');
    assert.equal(c.dtype, 'float32');
    assert.equal(c.hiddenSize, 128);
    assert.equal(c.numAttentionHeads, 2);
    assert.equal(c.numKeyValueHeads, 1);
    assert.equal(c.headDim, 64);
    assert.equal(c.hiddenAct, 'gelu_pytorch_tanh');
    assert.equal(c.rmsNormEps, 1e-6);
    assert.equal(c.tieWordEmbeddings, true);
    assert.deepEqual(c.rope, { theta: 10000, type: 'default', partialRotaryFactor: 1 });
  });

  it('gpt2-fp32 (n_* keys, n_inner null, learned positions)', () => {
    const c = loadModelConfig('tests/fixtures/gpt2-fp32');
    assert.equal(c.modelType, 'gpt2');
    assert.equal(c.dtype, 'float32');
    assert.equal(c.hiddenSize, 128);
    assert.equal(c.numHiddenLayers, 2);
    assert.equal(c.numAttentionHeads, 4);
    assert.equal(c.numKeyValueHeads, 4);
    assert.equal(c.headDim, 32);
    assert.equal(c.intermediateSize, 512);
    assert.equal(c.maxPositionEmbeddings, 512);
    assert.equal(c.maxModelLen, 512);
    assert.equal(c.rmsNormEps, 1e-5);
    assert.equal(c.hiddenAct, 'gelu_new');
    assert.equal(c.rope, null);
    assert.equal(c.tieWordEmbeddings, true);
    assert.equal(c.vocabSize, 4096);
  });
});

describe('config defaults and variants', () => {
  const base = readConfig('models/tiny-llama-kjv');

  it('defaults: kv heads = heads, head_dim = hidden / heads, llama untied, gpt2/gemma tied', () => {
    const { num_key_value_heads: _k, head_dim: _h, tie_word_embeddings: _t, ...rest } = base;
    withConfig(rest, (dir) => {
      const c = loadModelConfig(dir);
      assert.equal(c.numKeyValueHeads, 4);
      assert.equal(c.headDim, 64);
      assert.equal(c.tieWordEmbeddings, false);
    });
    const gpt2 = readConfig('tests/fixtures/gpt2-fp32');
    delete gpt2.tie_word_embeddings;
    withConfig(gpt2, (dir) => assert.equal(loadModelConfig(dir).tieWordEmbeddings, true));
    const gemma = readConfig('tests/fixtures/gemma-fp32');
    delete gemma.tie_word_embeddings;
    delete gemma.hidden_activation;
    gemma.hidden_act = 'gelu';
    withConfig(gemma, (dir) => {
      const c = loadModelConfig(dir);
      assert.equal(c.tieWordEmbeddings, true);
      assert.equal(c.hiddenAct, 'gelu_pytorch_tanh');
    });
  });

  it('rope_parameters with llama3 scaling and partial_rotary_factor', () => {
    const { rope_theta: _, ...rest } = base;
    const rope_parameters = {
      rope_type: 'llama3',
      rope_theta: 500000,
      factor: 32,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 8192,
      partial_rotary_factor: 0.5,
    };
    withConfig({ ...rest, rope_parameters }, (dir) => {
      assert.deepEqual(loadModelConfig(dir).rope, {
        theta: 500000,
        type: 'llama3',
        factor: 32,
        lowFreqFactor: 1,
        highFreqFactor: 4,
        originalMaxPositionEmbeddings: 8192,
        partialRotaryFactor: 0.5,
      });
    });
    withConfig({ ...base, partial_rotary_factor: 0.25, rope_scaling: { type: 'linear', factor: 2 } }, (dir) => {
      assert.deepEqual(loadModelConfig(dir).rope, { theta: 10000, type: 'linear', factor: 2, partialRotaryFactor: 0.25 });
    });
    withConfig({ ...base, rope_scaling: { rope_type: 'llama3', factor: 8 } }, (dir) => {
      assert.throws(() => loadModelConfig(dir), /rope_type llama3 needs low_freq_factor/);
    });
  });

  it('sliding_window: kept unless qwen2 says use_sliding_window false', () => {
    withConfig({ ...base, sliding_window: 4096 }, (dir) => assert.equal(loadModelConfig(dir).slidingWindow, 4096));
    const qwen2 = readConfig('tests/fixtures/qwen2-bf16');
    withConfig({ ...qwen2, sliding_window: 1024 }, (dir) => assert.equal(loadModelConfig(dir).slidingWindow, null));
    withConfig({ ...qwen2, sliding_window: 1024, use_sliding_window: true }, (dir) =>
      assert.equal(loadModelConfig(dir).slidingWindow, 1024),
    );
  });

  it('eos ids merge config and generation_config (numbers or lists), no generation_config = {}', () => {
    withConfig({ ...base, eos_token_id: [5, 0] }, (dir) => {
      const c = loadModelConfig(dir);
      assert.deepEqual(c.eosTokenIds, [5, 0, 2]);
    }, { eos_token_id: [0, 2] });
    withConfig({ ...base, eos_token_id: 7 }, (dir) => {
      assert.deepEqual(loadGenerationConfig(dir), {});
      const c = loadModelConfig(dir);
      assert.deepEqual(c.eosTokenIds, [7]);
      assert.deepEqual(c.generationConfig, {});
    });
  });

  it('max_model_len: override below the limit is used, above it is refused', () => {
    assert.equal(loadModelConfig('models/tiny-llama-kjv', { maxModelLen: 512 }).maxModelLen, 512);
    assert.throws(
      () => loadModelConfig('models/tiny-llama-kjv', { maxModelLen: 4096 }),
      /User-specified max_model_len \(4096\) is greater than the derived max_model_len \(max_position_embeddings=2048/,
    );
    assert.throws(() => loadModelConfig('tests/fixtures/gpt2-fp32', { maxModelLen: 513 }), /n_positions=512/);
    assert.throws(() => loadModelConfig('models/tiny-llama-kjv', { maxModelLen: 0 }), /positive integer/);
  });

  it('missing config.json, bad JSON and bad values name the file', () => {
    assert.throws(() => loadModelConfig('tests/fixtures/tiny-llama-kjv'), /no config\.json in tests\/fixtures\/tiny-llama-kjv/);
    withConfig('{"hidden_size": 12,', (dir) => {
      assert.throws(() => loadModelConfig(dir), (e: Error) => e.message.includes(join(dir, 'config.json')) && /not valid JSON/.test(e.message));
    });
    withConfig({ ...base, torch_dtype: 'int8' }, (dir) => assert.throws(() => loadModelConfig(dir), /config\.json: unsupported dtype "int8"/));
    const { hidden_size: _, ...noHidden } = base;
    withConfig(noHidden, (dir) => assert.throws(() => loadModelConfig(dir), /config\.json: missing hidden_size/));
  });
});
