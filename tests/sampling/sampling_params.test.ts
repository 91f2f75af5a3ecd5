import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  SamplingParams,
  SamplingParamsError,
  type SamplingParamsInput,
} from '../../src/sampling_params.js';
import {
  defaultSamplingOverrides,
  defaultSamplingParamsFromGenerationConfig,
  samplingParamsWithDefaults,
} from '../../src/sampling_params_defaults.js';
import { VllmError } from '../../src/errors.js';

function expectError(init: SamplingParamsInput, param: string, message: string | RegExp): void {
  assert.throws(
    () => SamplingParams.create(init),
    (e: unknown) => {
      assert.ok(e instanceof SamplingParamsError, `expected SamplingParamsError, got ${String(e)}`);
      assert.ok(e instanceof VllmError);
      assert.equal(e.status, 400);
      assert.equal(e.param, param);
      if (typeof message === 'string') assert.equal(e.message, message);
      else assert.match(e.message, message);
      return true;
    },
  );
}

// [init, param, vLLM's message]
const CASES: [SamplingParamsInput, string, string][] = [
  [{ n: 0 }, 'n', 'n must be at least 1, got 0.'],
  [{ n: 1.5 }, 'n', 'n must be an integer, got 1.5.'],
  [{ n: 20000 }, 'n', 'n must be at most 16384, got 20000. To increase this limit, set the VLLM_MAX_N_SEQUENCES environment variable.'],
  [{ presencePenalty: 2.5 }, 'presence_penalty', 'presence_penalty must be in [-2, 2], got 2.5.'],
  [{ presencePenalty: -3 }, 'presence_penalty', 'presence_penalty must be in [-2, 2], got -3.'],
  [{ presencePenalty: NaN }, 'presence_penalty', 'presence_penalty must be in [-2, 2], got NaN.'],
  [{ frequencyPenalty: -2.01 }, 'frequency_penalty', 'frequency_penalty must be in [-2, 2], got -2.01.'],
  [{ repetitionPenalty: 0 }, 'repetition_penalty', 'repetition_penalty must be greater than zero, got 0.'],
  [{ repetitionPenalty: -1 }, 'repetition_penalty', 'repetition_penalty must be greater than zero, got -1.'],
  [{ repetitionPenalty: Infinity }, 'repetition_penalty', 'repetition_penalty must be a finite number, got Infinity.'],
  [{ temperature: -0.1 }, 'temperature', 'temperature must be non-negative, got -0.1.'],
  [{ temperature: 2.5 }, 'temperature', 'temperature must be in [0, 2], got 2.5.'],
  [{ temperature: NaN }, 'temperature', 'temperature must be a finite number, got NaN.'],
  [{ topP: 0 }, 'top_p', 'top_p must be in (0, 1], got 0.'],
  [{ topP: 1.1 }, 'top_p', 'top_p must be in (0, 1], got 1.1.'],
  [{ topK: -2 }, 'top_k', 'top_k must be 0 (disable), or at least 1, got -2.'],
  [{ topK: 2.5 }, 'top_k', 'top_k must be an integer, got 2.5.'],
  [{ minP: -0.1 }, 'min_p', 'min_p must be in [0, 1], got -0.1.'],
  [{ minP: 1.5 }, 'min_p', 'min_p must be in [0, 1], got 1.5.'],
  [{ maxTokens: 0 }, 'max_tokens', 'max_tokens must be at least 1, got 0.'],
  [{ maxTokens: 2.5 }, 'max_tokens', 'max_tokens must be an integer, got 2.5.'],
  [{ minTokens: -1 }, 'min_tokens', 'min_tokens must be greater than or equal to 0, got -1.'],
  [{ minTokens: 10, maxTokens: 5 }, 'min_tokens', 'min_tokens must be less than or equal to max_tokens=5, got 10.'],
  [{ logprobs: -2 }, 'logprobs', 'logprobs must be non-negative or -1, got -2.'],
  [{ promptLogprobs: -5 }, 'prompt_logprobs', 'prompt_logprobs must be non-negative or -1, got -5.'],
  [{ stopTokenIds: [1, 2.5] }, 'stop_token_ids', 'stop_token_ids must contain only integers, got [1, 2.5].'],
  [{ stop: ['ok', ''] }, 'stop', 'stop cannot contain an empty string.'],
  [{ stop: '' }, 'stop', 'stop cannot contain an empty string.'],
  [{ stop: ['x'], detokenize: false }, 'stop', 'stop strings are only supported when detokenize is True. Set detokenize=True to use stop.'],
  [{ allowedTokenIds: [] }, 'allowed_token_ids', 'allowed_token_ids is not None and empty!'],
  [{ allowedTokenIds: [1, -0.5] }, 'allowed_token_ids', 'allowed_token_ids must contain only integers, got [1, -0.5].'],
  [{ logitBias: { abc: 1 } }, 'logit_bias', "logit_bias contains key(s) that cannot be converted to integer token IDs: ['abc']"],
  [{ seed: 1.5 }, 'seed', 'seed must be an integer, got 1.5.'],
  [{ temperature: 0, n: 2 }, 'n', 'n must be 1 when using greedy sampling, got 2.'],
  [{ outputKind: 'sometimes' as never }, 'output_kind', "output_kind must be one of cumulative, delta, final_only, got 'sometimes'."],
  [{ ignoreEos: 'yes' as never }, 'ignore_eos', 'ignore_eos must be a boolean, got string.'],
  [{ temperature: '0.5' as never }, 'temperature', 'temperature must be a number, got string.'],
];

for (const [init, param, message] of CASES) {
  test(`create rejects ${JSON.stringify(init, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v))}`, () => {
    expectError(init, param, message);
  });
}

test('create accepts boundary values', () => {
  const p = SamplingParams.create({
    n: 3, presencePenalty: -2, frequencyPenalty: 2, repetitionPenalty: 0.01, temperature: 2, topP: 1e-9,
    topK: 1, minP: 1, maxTokens: 1, minTokens: 1, logprobs: -1, promptLogprobs: 0, stop: ['a'],
  });
  assert.equal(p.n, 3);
  assert.equal(p.topK, 1);
  assert.equal(p.logprobs, -1);
  assert.equal(p.maxTokens, 1);
  assert.equal(SamplingParams.create({ maxTokens: null }).maxTokens, null);
});

test('create keeps every default of vLLM', () => {
  const p = SamplingParams.create();
  const plain = new SamplingParams();
  assert.deepEqual({ ...p }, { ...plain });
  assert.equal(p.maxTokens, 16);
  assert.equal(p.temperature, 1);
  assert.equal(p.topK, 0);
  assert.equal(p.outputKind, 'cumulative');
});

test('create normalizes as vLLM', () => {
  const p = SamplingParams.create({
    stop: 'END', stopTokenIds: [5, 7, 5], seed: -1, logprobs: true, promptLogprobs: true, topK: -1,
    logitBias: { '12': 300, 7: -1000, ' 3 ': 0.5 },
  });
  assert.deepEqual(p.stop, ['END']);
  assert.deepEqual(p.stopTokenIds, [5, 7]);
  assert.equal(p.seed, null);
  assert.equal(p.logprobs, 1);
  assert.equal(p.promptLogprobs, 1);
  assert.equal(p.topK, 0);
  assert.deepEqual(p.logitBias, { 12: 100, 7: -100, 3: 0.5 });
  const q = SamplingParams.create({ stop: null, stopTokenIds: null, logprobs: false });
  assert.deepEqual(q.stop, []);
  assert.deepEqual(q.stopTokenIds, []);
  assert.equal(q.logprobs, null);
  assert.ok(q instanceof SamplingParams);
});

test('greedy temperature resets top-p, top-k and min-p; a tiny positive temperature is raised to 0.01', () => {
  const g = SamplingParams.create({ temperature: 0, topP: 0.5, topK: 10, minP: 0.2 });
  assert.equal(g.greedy, true);
  assert.equal(g.topP, 1);
  assert.equal(g.topK, 0);
  assert.equal(g.minP, 0);
  const t = SamplingParams.create({ temperature: 1e-6, topK: 10 });
  assert.equal(t.temperature, 0.01);
  assert.equal(t.greedy, false);
  assert.equal(t.topK, 10);
  // The plain constructor does not validate nor normalize.
  const raw = new SamplingParams({ temperature: 1e-6, topP: 0.5 });
  assert.equal(raw.greedy, true);
  assert.equal(raw.topP, 0.5);
});

test('undefined fields keep their defaults', () => {
  const p = SamplingParams.create({ temperature: undefined, maxTokens: undefined });
  assert.equal(p.temperature, 1);
  assert.equal(p.maxTokens, 16);
});

test('verify checks what needs the model', () => {
  const model = { vocabSize: 100 };
  SamplingParams.create({ logprobs: 20, promptLogprobs: 20, stopTokenIds: [99], logitBias: { 0: 1 }, allowedTokenIds: [0, 99] }).verify(model);
  const cases: [SamplingParamsInput, { vocabSize: number; maxLogprobs?: number }, string, string][] = [
    [{ logprobs: 21 }, model, 'logprobs', 'Requested sample logprobs of 21, which is greater than max allowed: 20'],
    [{ logprobs: -1 }, model, 'logprobs', 'Requested sample logprobs of 100, which is greater than max allowed: 20'],
    [{ promptLogprobs: 30 }, { vocabSize: 100, maxLogprobs: 25 }, 'prompt_logprobs', 'Requested prompt logprobs of 30, which is greater than max allowed: 25'],
    [{ stopTokenIds: [3, 100, -1] }, model, 'stop_token_ids', 'token_id(s) [100, -1] in stop_token_ids contain out-of-vocab token ids. Vocabulary size: 100'],
    [{ logitBias: { 5: 1, 150: 2 } }, model, 'logit_bias', 'token_id(s) [150] in logit_bias contain out-of-vocab token ids. Vocabulary size: 100'],
    [{ allowedTokenIds: [1, 100] }, model, 'allowed_token_ids', 'allowed_token_ids contains out-of-vocab token id!'],
  ];
  for (const [init, m, param, message] of cases) {
    assert.throws(() => SamplingParams.create(init).verify(m), (e: unknown) => {
      assert.ok(e instanceof SamplingParamsError);
      assert.equal(e.param, param);
      assert.equal(e.message, message);
      return true;
    });
  }
  SamplingParams.create({ logprobs: -1 }).verify({ vocabSize: 100, maxLogprobs: -1 });
});

test('clone copies lists and applies overrides', () => {
  const p = SamplingParams.create({ stop: ['a'], seed: 7, logitBias: { 1: 2 } });
  const c = p.clone({ seed: 8 });
  assert.ok(c instanceof SamplingParams);
  assert.equal(c.seed, 8);
  c.stop.push('b');
  c.logitBias![1] = 5;
  assert.deepEqual(p.stop, ['a']);
  assert.equal(p.logitBias![1], 2);
});

test('generation_config defaults: the keys vLLM takes, user fields win', () => {
  const gen = JSON.parse(readFileSync('models/tiny-llama-kjv/generation_config.json', 'utf8')) as Record<string, unknown>;
  // tiny-llama-kjv: do_sample, temperature 0.8, top_p 0.95 (+ eos / bos ids, which are not sampling defaults)
  assert.deepEqual(defaultSamplingParamsFromGenerationConfig(gen), { temperature: 0.8, topP: 0.95 });
  assert.deepEqual(
    defaultSamplingParamsFromGenerationConfig({
      temperature: 0.6, top_p: 0.9, top_k: 20, min_p: 0.05, repetition_penalty: 1.1, max_new_tokens: 256,
      do_sample: true, eos_token_id: [1, 2], top_a: 3, length_penalty: null,
    }),
    { temperature: 0.6, topP: 0.9, topK: 20, minP: 0.05, repetitionPenalty: 1.1, maxTokens: 256 },
  );
  assert.deepEqual(defaultSamplingParamsFromGenerationConfig({}), {});
  assert.deepEqual(defaultSamplingParamsFromGenerationConfig(null), {});
  assert.deepEqual(defaultSamplingOverrides(gen, 'vllm'), {});
  assert.deepEqual(defaultSamplingOverrides(gen, 'auto'), { temperature: 0.8, topP: 0.95 });

  const merged = samplingParamsWithDefaults(defaultSamplingParamsFromGenerationConfig(gen), { temperature: 0, topP: undefined });
  assert.equal(merged.temperature, 0);
  assert.equal(merged.topP, 1); // greedy resets it
  const kept = samplingParamsWithDefaults({ temperature: 0.8, topP: 0.95 }, { maxTokens: 5 });
  assert.equal(kept.temperature, 0.8);
  assert.equal(kept.topP, 0.95);
  assert.equal(kept.maxTokens, 5);
  assert.throws(() => samplingParamsWithDefaults({ topP: 0.95 }, { topP: 0 }), SamplingParamsError);
});
