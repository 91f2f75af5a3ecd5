// CPU graphs (csrc/cpu/graph.cpp through worker/cuda_graph.ts): decode steps replayed
// from a recorded graph give the same tokens and the same logprobs, bit for bit, as
// the same engine run eagerly (--enforce-eager), for a dense model, sliding windows,
// soft-capped logits and mixture-of-experts layers; batches smaller than their bucket
// (padded rows) included, greedy and seeded sampling alike.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadModelConfig } from '../../src/config/model_config.js';
import { LLM, type LLMOptions } from '../../src/index.js';
import type { CudaGraphRunner } from '../../src/worker/cuda_graph.js';
import type { ModelRunner } from '../../src/worker/model_runner.js';
import { mixedPrompts } from '../helpers/prompts.js';

const TINY = 'models/tiny-llama-kjv';
const MODELS: { dir: string; blockSize?: number }[] = [
  { dir: TINY },
  { dir: 'tests/fixtures/mistral-swa-fp16', blockSize: 4 },
  { dir: 'tests/fixtures/gemma2-bf16', blockSize: 4 },
  { dir: 'tests/fixtures/qwen3moe-bf16', blockSize: 4 },
];

interface Run {
  tokens: number[][];
  logprobs: string[];
  graphLaunches: number;
}

async function generate(dir: string, opts: Partial<LLMOptions>, prompts: number[][]): Promise<Run> {
  const llm = await LLM.create({ model: dir, tokenizer: TINY, useTqdm: false, maxModelLen: 128, maxNumSeqs: 8, numThreads: 2, ...opts });
  try {
    // Half greedy, half seeded sampling; 3 top logprobs per token.
    const params = prompts.map((_, i) => ({ temperature: i % 2 ? 0.8 : 0, seed: i % 2 ? 100 + i : undefined, maxTokens: 12, ignoreEos: true, logprobs: 3 }));
    const outs = await llm.generate(prompts.map((p) => ({ promptTokenIds: p })), params);
    // At tensor-parallel size 1 the executor's runner is the Worker's ModelRunner itself.
    const runner = (llm.engine.engineCore as unknown as { executor: { runner: ModelRunner } }).executor.runner;
    const graphs: CudaGraphRunner | null = runner.graphRunner;
    return {
      tokens: outs.map((o) => o.outputs[0].tokenIds),
      logprobs: outs.map((o) => JSON.stringify(o.outputs[0].logprobs)),
      graphLaunches: graphs?.numLaunches ?? 0,
    };
  } finally {
    llm.close();
  }
}

for (const { dir, blockSize } of MODELS) {
  test(`${dir.split('/').pop()}: decode replayed from CPU graphs equals eager decode, tokens and logprobs`, async () => {
    const vocab = loadModelConfig(dir).vocabSize;
    // 6 requests of 3..40 tokens: decode batches of 6 run in the 8-row bucket, then fewer as none finish early.
    const prompts = mixedPrompts(6, 3, 40, Math.min(vocab, 4096), 7);
    const eager = await generate(dir, { enforceEager: true, blockSize }, prompts);
    const graphs = await generate(dir, { blockSize }, prompts);
    assert.equal(eager.graphLaunches, 0, 'enforceEager captures nothing');
    assert.ok(graphs.graphLaunches >= 10, `decode steps replayed graphs (${graphs.graphLaunches} launches)`);
    assert.deepEqual(graphs.tokens, eager.tokens);
    graphs.logprobs.forEach((lp, i) => assert.equal(lp, eager.logprobs[i], `request ${i}: logprobs differ`));
  });
}
