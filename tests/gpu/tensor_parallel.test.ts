// --tensor-parallel-size 2 on two GPUs (NCCL; ranks 1.. are child processes) against
// TP=1 on the fixture models: greedy tokens agree wherever TP=1's margin is clear
// (the row-parallel sums are split in two, so a near tie may flip; not bit-identical);
// greedy batch invariance within TP=2 (a prompt alone equals its row among 48 with
// chunked prefill), and the decode CUDA graphs, with NCCL captured inside, equal
// eager steps. Skips without two GPUs or libnccl. Results go to
// $VLLM_TS_GPU_REPORT/tensor_parallel.json when that folder is set.
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { LLM, type LLMOptions } from '../../src/index.js';
import { loadCompactReference } from '../helpers/compact_reference.js';
import { mixedPrompts } from '../helpers/prompts.js';
import { multiGpuSkipReason } from './tp_helpers.js';

const skip = multiGpuSkipReason(2);
const TINY_TOKENIZER = 'models/tiny-llama-kjv';
/** TP=1's top-1 minus top-2 logprob under which TP=2 may pick the other token (bf16 sums in another order). */
const MARGIN = 0.1;
const report: Record<string, unknown> = {};
const save = () => {
  const dir = process.env.VLLM_TS_GPU_REPORT;
  if (dir) writeFileSync(join(dir, 'tensor_parallel.json'), JSON.stringify(report, null, 2));
};

async function withLLM<T>(opts: Partial<LLMOptions> & { model: string }, fn: (llm: LLM) => Promise<T>): Promise<T> {
  const llm = await LLM.create({ device: 'cuda', useTqdm: false, maxModelLen: 256, ...opts });
  try {
    const r = await fn(llm);
    const core = llm.engine.engineCore;
    assert.equal(core.numFreeBlocks, core.cacheConfig.numBlocks - 1, 'every KV block is free again');
    return r;
  } finally {
    llm.close();
  }
}

// Fixtures whose heads split over 2 ranks: GQA (a KV head each), MQA (replicated), biases, q/k norms, Conv1D, MoE.
const FIXTURES: [string, string][] = [
  ['tiny-llama-kjv', 'models/tiny-llama-kjv'],
  ['llama-gqa-fp16', 'tests/fixtures/llama-gqa-fp16'],
  ['llama-mqa-hd128-bf16', 'tests/fixtures/llama-mqa-hd128-bf16'],
  ['qwen2-bf16', 'tests/fixtures/qwen2-bf16'],
  ['qwen3-bf16', 'tests/fixtures/qwen3-bf16'],
  ['mistral-swa-fp16', 'tests/fixtures/mistral-swa-fp16'],
  ['gemma3-bf16', 'tests/fixtures/gemma3-bf16'],
  ['phi3-bf16', 'tests/fixtures/phi3-bf16'],
  ['gpt2-fp32', 'tests/fixtures/gpt2-fp32'],
  ['mixtral-bf16', 'tests/fixtures/mixtral-bf16'],
  ['qwen2moe-bf16', 'tests/fixtures/qwen2moe-bf16'],
  ['qwen3moe-bf16', 'tests/fixtures/qwen3moe-bf16'],
];

type Row = { tokens: number[]; margins: number[] };

async function greedy(model: string, tp: number, prompts: number[][], lens: number[]): Promise<Row[]> {
  // The fixtures made without a tokenizer of their own use the tiny model's (the prompts are ids either way).
  const tokenizer = existsSync(join(model, 'tokenizer.json')) ? undefined : TINY_TOKENIZER;
  return withLLM({ model, tokenizer, tensorParallelSize: tp }, async (llm) => {
    const outs = await llm.generate(prompts.map((p) => ({ promptTokenIds: p })), lens.map((n) => ({ temperature: 0, maxTokens: n, ignoreEos: true, logprobs: 2 })));
    return outs.map((o) => ({
      tokens: o.outputs[0].tokenIds,
      margins: (o.outputs[0].logprobs ?? []).map((pos) => {
        const lps = Object.values(pos).map((l) => l.logprob).sort((a, b) => b - a);
        return lps.length > 1 ? lps[0] - lps[1] : Infinity;
      }),
    }));
  });
}

test('TP=2 greedy tokens equal TP=1 on every fixture wherever TP=1\'s margin is clear', { skip }, async () => {
  const rows: Record<string, unknown>[] = [];
  const offTies: string[] = [];
  for (const [name, dir] of FIXTURES) {
    const { cases } = loadCompactReference(name === 'tiny-llama-kjv' ? 'tests/fixtures/tiny-llama-kjv' : dir);
    const prompts = cases.map((c) => c.promptIds);
    const lens = cases.map((c) => Math.max(c.generatedIds.length, 16));
    const one = await greedy(dir, 1, prompts, lens);
    const two = await greedy(dir, 2, prompts, lens);
    let agree = 0;
    let total = 0;
    one.forEach((a, i) => {
      const b = two[i];
      const j = a.tokens.findIndex((t, k) => t !== b.tokens[k]);
      const upTo = j === -1 ? a.tokens.length : j;
      agree += upTo;
      total += a.tokens.length;
      if (j !== -1 && a.margins[j] >= MARGIN) offTies.push(`${name} case ${i} position ${j}: TP=1 margin ${a.margins[j].toFixed(3)}`);
    });
    rows.push({ model: name, identicalPrefix: `${agree}/${total}` });
  }
  console.table(rows);
  report.agreement = rows;
  save();
  assert.deepEqual(offTies, [], `every TP=2 / TP=1 divergence is at a near tie (TP=1 margin < ${MARGIN})`);
});

test('greedy batch invariance within TP=2: alone equals batched (48 prompts, chunked prefill), graphs equal eager', { skip }, async () => {
  const { cases } = loadCompactReference('tests/fixtures/tiny-llama-kjv');
  const mine = cases.map((c) => c.promptIds);
  const others = mixedPrompts(44, 3, 150, 4096);
  const params = { temperature: 0, maxTokens: 32, ignoreEos: true };
  const all = [...mine, ...others].map((p) => ({ promptTokenIds: p }));
  const tokens = (outs: { outputs: { tokenIds: number[] }[] }[]) => outs.map((o) => o.outputs[0].tokenIds);
  const opts = { model: 'models/tiny-llama-kjv', tensorParallelSize: 2, maxNumBatchedTokens: 64 };
  const { alone, batched } = await withLLM(opts, async (llm) => {
    const alone: number[][] = [];
    for (const p of all.slice(0, mine.length)) alone.push(tokens(await llm.generate([p], params))[0]);
    return { alone, batched: tokens(await llm.generate(all, params)) };
  });
  const eager = await withLLM({ ...opts, enforceEager: true }, async (llm) => tokens(await llm.generate(all, params)));
  alone.forEach((t, i) => assert.deepEqual(batched[i], t, `case ${i}: batched vs alone`));
  assert.deepEqual(eager, batched, 'eager steps vs decode CUDA graphs (NCCL captured inside)');
  report.invariance = { cases: mine.length, batch: mine.length + others.length, identical: true };
  save();
});
