// Whole models at --tensor-parallel-size 2 and 4 on the CPU: the ranks (the engine
// core's thread and worker threads) joined by the in-process communicator, a real
// exchange through shared memory. Against TP=1: the same greedy tokens and the
// sampled tokens' logprobs (and the top 5) within fp tolerance (the reduction order
// differs: the sums of the row-parallel layers are split in two); against
// HuggingFace: the greedy tokens up to the first position where HF's margin is unclear.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { LLM } from '../../src/index.js';
import { isAvailable, loadNative } from '../../src/native/index.js';
import { decisivePrefix, loadCompactReference } from '../helpers/compact_reference.js';

const TINY_TOKENIZER = 'models/tiny-llama-kjv';
const NEAR_TIE = 1e-3;
/** |Δlogprob| allowed between TP=2 and TP=1 (f32 activations, sums split over ranks). */
const LOGPROB_TOL = 1e-4;

interface Run {
  tokens: number[][];
  logprobs: Map<number, number>[][]; // per case, per position: token -> logprob (sampled + top 5)
}

async function generate(dir: string, tp: number, prompts: { promptTokenIds: number[] }[], maxTokens: number[]): Promise<Run> {
  // The fixtures made without a tokenizer of their own use the tiny model's (the prompts are ids either way).
  const tokenizer = existsSync(join(dir, 'tokenizer.json')) ? undefined : TINY_TOKENIZER;
  const llm = await LLM.create({
    model: dir, tokenizer, useTqdm: false, device: 'cpu', maxModelLen: 96, maxNumSeqs: 4, blockSize: 4,
    maxNumBatchedTokens: 256, tensorParallelSize: tp,
  });
  try {
    const outs = await llm.generate(prompts, maxTokens.map((n) => ({ temperature: 0, maxTokens: n, ignoreEos: true, logprobs: 5 })));
    return {
      tokens: outs.map((o) => o.outputs[0].tokenIds),
      logprobs: outs.map((o) => (o.outputs[0].logprobs ?? []).map((pos) => new Map(Object.entries(pos).map(([t, l]) => [Number(t), l.logprob])))),
    };
  } finally {
    llm.close();
  }
}

// Every family with a fixture whose heads split over 2 ranks (OLMo 2's k_norm over one
// KV head does not: refused below): GQA with a KV head per rank, one KV head replicated
// on both, MoE with and without a shared expert; at 4 ranks the 4-head fixtures, their
// 2 KV heads each replicated on 2 ranks.
const FIXTURES = [
  { dir: 'tests/fixtures/llama-gqa-fp16', what: 'Llama, 6 heads / 2 KV heads (3 and 1 per rank)', tp: [2] },
  { dir: 'tests/fixtures/llama-mqa-hd128-bf16', what: 'Llama MQA, head_dim 128, 1 KV head replicated', tp: [2] },
  { dir: 'tests/fixtures/qwen2-bf16', what: 'Qwen2, q/k/v biases cut per rank', tp: [2, 4] },
  { dir: 'tests/fixtures/qwen3-bf16', what: 'Qwen3, q/k norms per head', tp: [2, 4] },
  { dir: 'tests/fixtures/mistral-swa-fp16', what: 'Mistral, sliding window', tp: [2, 4] },
  { dir: 'tests/fixtures/gemma-fp32', what: 'Gemma, scaled embedding, 1 KV head replicated', tp: [2] },
  { dir: 'tests/fixtures/gemma2-bf16', what: 'Gemma 2, 1 KV head replicated, soft-capped logits', tp: [2] },
  { dir: 'tests/fixtures/gemma3-bf16', what: 'Gemma 3, 4 heads / 2 KV heads, q/k norms per head', tp: [2, 4] },
  { dir: 'tests/fixtures/phi3-bf16', what: "Phi-3, the checkpoint's fused qkv_proj and gate_up_proj cut per rank", tp: [2] },
  { dir: 'tests/fixtures/granite-bf16', what: 'Granite, multipliers', tp: [2] },
  { dir: 'tests/fixtures/smollm3-bf16', what: 'SmolLM3, layers without rope', tp: [2] },
  { dir: 'tests/fixtures/gpt2-fp32', what: "GPT-2, Conv1D c_attn / c_fc cut by columns, c_proj biases on rank 0", tp: [2, 4] },
  { dir: 'tests/fixtures/mixtral-bf16', what: 'Mixtral, experts sharded by their width', tp: [2] },
  { dir: 'tests/fixtures/qwen2moe-bf16', what: 'Qwen2-MoE, experts and the shared expert sharded, one all-reduce', tp: [2] },
  { dir: 'tests/fixtures/qwen3moe-bf16', what: 'Qwen3-MoE', tp: [2] },
];

for (const { dir, what, tp: sizes } of FIXTURES) {
  test(`TP=${sizes.join(' and ')} on the CPU equal TP=1 and HF's greedy tokens: ${what}`, async () => {
    const { topK, cases } = loadCompactReference(dir);
    const prompts = cases.map((c) => ({ promptTokenIds: c.promptIds }));
    const lens = cases.map((c) => c.generatedIds.length);
    const one = await generate(dir, 1, prompts, lens);
    for (const tp of sizes) {
      const many = await generate(dir, tp, prompts, lens);
      assert.deepEqual(many.tokens, one.tokens, `greedy tokens TP=${tp} vs TP=1`);
      let worst = 0;
      let compared = 0;
      many.logprobs.forEach((positions, i) => positions.forEach((m, j) => {
        for (const [tok, lp] of m) {
          const ref = one.logprobs[i][j].get(tok);
          if (ref === undefined) continue; // a near tie at the top-5 boundary
          worst = Math.max(worst, Math.abs(lp - ref));
          compared++;
        }
      }));
      assert.ok(compared >= lens.reduce((a, b) => a + b, 0) * 5, `TP=${tp}: only ${compared} logprobs compared`);
      assert.ok(worst <= LOGPROB_TOL, `max |Δlogprob| TP=${tp} vs TP=1: ${worst}`);
      cases.forEach((c, i) => {
        const n = decisivePrefix(c, topK, NEAR_TIE);
        assert.deepEqual(many.tokens[i].slice(0, n), c.generatedIds.slice(0, n), `TP=${tp} case ${i}: first ${n} tokens vs HF`);
      });
    }
  });
}

// Every rank samples from the same gathered logits with the same seeds, and its own
// sampled tokens feed its next step: a rank that drew another token would put other
// keys in its heads' cache, and rank 0's later tokens would leave TP=1's.
test('seeded sampling at TP=2 draws the same tokens as TP=1 (the ranks sample alike)', async () => {
  const dir = 'tests/fixtures/qwen3-bf16';
  const { cases } = loadCompactReference(dir);
  const run = async (tp: number) => {
    const llm = await LLM.create({ model: dir, tokenizer: TINY_TOKENIZER, useTqdm: false, device: 'cpu', maxModelLen: 96, maxNumSeqs: 4,
      blockSize: 4, tensorParallelSize: tp });
    try {
      const outs = await llm.generate(cases.map((c) => ({ promptTokenIds: c.promptIds })),
        cases.map((_, i) => ({ temperature: 1, topP: 0.95, seed: 1234 + i, maxTokens: 24, ignoreEos: true })));
      return outs.map((o) => o.outputs[0].tokenIds);
    } finally {
      llm.close();
    }
  };
  const one = await run(1);
  assert.ok(one.some((t) => new Set(t).size > 3), 'the samples vary (not a greedy run in disguise)');
  assert.deepEqual(await run(2), one);
});

// The grammar thread fills the step's bitmask while rank 0's forward runs and
// overwrites it with the next step's: the other ranks must sample with this step's
// rows (src/executor/rank_grammar.ts), or their tokens, and then rank 0's, drift.
test('structured outputs at TP=2: regex, choice and grammar outputs match TP=1 token for token', async () => {
  const prompts = ['In the beginning', 'And God said', 'The LORD is', 'Whose son?'];
  const params = [
    { temperature: 0, maxTokens: 24 },
    { temperature: 0.8, seed: 3, maxTokens: 30, structuredOutputs: { regex: '[0-9]{3}-[a-z]{2,6}' } },
    { temperature: 1, seed: 4, maxTokens: 10, structuredOutputs: { choice: ['light', 'darkness', 'the firmament'] } },
    { temperature: 1, seed: 5, maxTokens: 40, structuredOutputs: { grammar: 'root ::= "son of " name\nname ::= [A-Z] [a-z]{1,6}' } },
  ];
  const run = async (tp: number) => {
    const llm = await LLM.create({ model: TINY_TOKENIZER, useTqdm: false, device: 'cpu', maxModelLen: 128, tensorParallelSize: tp });
    try {
      return (await llm.generate(prompts, params)).map((o) => o.outputs[0]);
    } finally {
      llm.close();
    }
  };
  const one = await run(1);
  const two = await run(2);
  assert.deepEqual(two.map((o) => o.tokenIds), one.map((o) => o.tokenIds));
  assert.match(two[1].text, /^[0-9]{3}-[a-z]{2,6}$/);
  assert.ok(['light', 'darkness', 'the firmament'].includes(two[2].text), two[2].text);
  assert.match(two[3].text, /^son of [A-Z][a-z]{1,6}$/);
});

// Each rank caches only its KV heads, so the same per-rank budget holds more blocks:
// tiny-llama-kjv has 2 KV heads, one a rank at TP=2, and one (replicated) at TP=4.
test('the KV cache is sharded by KV heads: the same --kv-cache-memory-bytes holds twice the blocks at TP=2 and 4', async () => {
  const blocks = async (tp: number) => {
    const llm = await LLM.create({ model: TINY_TOKENIZER, useTqdm: false, device: 'cpu', maxModelLen: 128, tensorParallelSize: tp,
      kvCacheMemoryBytes: 64 * 2 * 8 * 16 * 2 * 64 * 4 }); // 64 blocks of 16 tokens, 8 layers, 2 KV heads of 64, f32
    try {
      const [out] = await llm.generate(['In the beginning'], { temperature: 0, maxTokens: 4 });
      assert.equal(out.outputs[0].tokenIds.length, 4);
      return llm.engine.engineCore.cacheConfig.numBlocks;
    } finally {
      llm.close();
    }
  };
  assert.equal(await blocks(1), 64);
  assert.equal(await blocks(2), 128);
  assert.equal(await blocks(4), 128);
});

test('TP=2 refuses what does not split, in vLLM\'s words, before any rank starts', async () => {
  await assert.rejects(
    LLM.create({ model: 'tests/fixtures/llama-gqa-fp16', useTqdm: false, device: 'cpu', tensorParallelSize: 4 }),
    /Total number of attention heads \(6\) must be divisible by tensor parallel size \(4\)/,
  );
  await assert.rejects(
    LLM.create({ model: 'tests/fixtures/olmo2-bf16', tokenizer: TINY_TOKENIZER, useTqdm: false, device: 'cpu', tensorParallelSize: 2 }),
    /k_norm spans all 1 key\/value heads/,
  );
  await assert.rejects(
    LLM.create({ model: 'tests/fixtures/llama-gqa-fp16', useTqdm: false, device: 'cpu', tensorParallelSize: 0 }),
    /--tensor-parallel-size \(tensorParallelSize\) must be a positive integer/,
  );
});

const cudaWithFewGpus = isAvailable('cuda') && loadNative('cuda').deviceCount() < 2;
test('on CUDA, more ranks than visible GPUs is refused before any rank starts, naming the count',
  { skip: !cudaWithFewGpus && 'needs the CUDA library built on a machine with fewer than 2 GPUs' }, async () => {
    const count = loadNative('cuda').deviceCount();
    await assert.rejects(
      LLM.create({ model: TINY_TOKENIZER, useTqdm: false, device: 'cuda', tensorParallelSize: 2 }),
      new RegExp(`--tensor-parallel-size 2 needs 2 GPUs, one per rank; ${count} (is|are) visible`),
    );
  });
