// N-gram speculative decoding on CUDA (skips without a GPU): greedy tokens identical
// with and without speculation, with CUDA graphs (plain decode steps replay graphs,
// steps that verify drafts run eagerly) and with --enforce-eager, in a mixed batch
// with chunked prefill and preemption; a seeded request's tokens do not depend on its
// batch under speculation; every block free afterwards. Acceptance counts go to
// $VLLM_TS_GPU_REPORT/spec_decode.json when that folder is set.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gpuSkipReason } from './helpers.js';
import { LLM, type LLMOptions } from '../../src/index.js';
import type { SpecDecodingStats } from '../../src/core/types.js';
import type { SamplingParamsInput } from '../../src/sampling_params.js';
import { KJV_PROMPTS } from '../helpers/kjv_prompts.js';
import { mixedPrompts } from '../helpers/prompts.js';

const skip = gpuSkipReason();
const SPEC = { method: 'ngram', num_speculative_tokens: 4, prompt_lookup_max: 4, prompt_lookup_min: 2 };
const report: Record<string, unknown> = {};
const save = () => {
  const dir = process.env.VLLM_TS_GPU_REPORT;
  if (dir) writeFileSync(join(dir, 'spec_decode.json'), JSON.stringify(report, null, 2));
};

async function run(opts: Partial<LLMOptions>, prompts: (string | { promptTokenIds: number[] })[], params: SamplingParamsInput | SamplingParamsInput[]) {
  const llm = await LLM.create({ model: 'models/tiny-llama-kjv', device: 'cuda', useTqdm: false, maxModelLen: 512, ...opts });
  try {
    const core = llm.engine.engineCore;
    const stats = { drafts: 0, draftTokens: 0, accepted: 0 };
    const step = core.step.bind(core);
    core.step = () => {
      const out = step();
      const s: SpecDecodingStats | undefined = out.schedulerStats?.specDecodingStats;
      if (s) {
        stats.drafts += s.numDrafts;
        stats.draftTokens += s.numDraftTokens;
        stats.accepted += s.numAcceptedTokens;
      }
      return out;
    };
    const outs = await llm.generate(prompts, params);
    assert.equal(core.numFreeBlocks, core.cacheConfig.numBlocks - 1, 'every KV block is free again');
    return { tokens: outs.map((o) => o.outputs[0].tokenIds), stats, preemptions: core.scheduler.totalNumPreemptions };
  } finally {
    llm.close();
  }
}

const PROMPTS = [
  ...KJV_PROMPTS,
  ...mixedPrompts(24, 3, 120, 4096).map((p) => ({ promptTokenIds: p })),
  { promptTokenIds: Array.from({ length: 60 }, (_, i) => 100 + (i % 7)) },
];

test('greedy on CUDA: identical tokens with and without speculation (graphs, eager, chunked prefill, preemption)', { skip }, async () => {
  const params = { temperature: 0, maxTokens: 48, ignoreEos: true };
  const base = await run({}, PROMPTS, params);
  const graphs = await run({ speculativeConfig: SPEC }, PROMPTS, params);
  const eager = await run({ speculativeConfig: SPEC, enforceEager: true }, PROMPTS, params);
  const blockBytes = 2 * 8 * 16 * 2 * 64 * 2; // bf16 KV
  const small = await run({ speculativeConfig: SPEC, maxNumBatchedTokens: 32, kvCacheMemoryBytes: 40 * blockBytes }, PROMPTS, params);
  report.greedy = { prompts: PROMPTS.length, graphs: graphs.stats, eager: eager.stats, smallCache: { ...small.stats, preemptions: small.preemptions } };
  save();
  const firstDiff = (a: number[][], b: number[][]) => a.findIndex((t, i) => JSON.stringify(t) !== JSON.stringify(b[i]));
  assert.equal(firstDiff(graphs.tokens, base.tokens), -1, 'speculative (CUDA graphs for plain steps) vs plain');
  assert.equal(firstDiff(eager.tokens, base.tokens), -1, 'speculative, enforce eager vs plain');
  assert.ok(small.preemptions > 0, 'the small cache forced preemptions');
  assert.equal(firstDiff(small.tokens, base.tokens), -1, 'speculative with chunked prefill and preemption vs plain');
  for (const s of [graphs.stats, eager.stats, small.stats]) assert.ok(s.accepted > 0 && s.accepted < s.draftTokens, JSON.stringify(s));
});

test('seeded sampling on CUDA under speculation: a request draws the same tokens alone and in a batch', { skip }, async () => {
  const seeded = { temperature: 0.8, topP: 0.95, seed: 11, maxTokens: 32, ignoreEos: true };
  const alone = await run({ speculativeConfig: SPEC }, [KJV_PROMPTS[0]], seeded);
  const others = PROMPTS.slice(1);
  const mixed = await run({ speculativeConfig: SPEC }, [...others, KJV_PROMPTS[0]],
    [...others.map((_, i) => ({ temperature: 1, seed: 100 + i, maxTokens: 20, ignoreEos: true })), seeded]);
  assert.deepEqual(mixed.tokens[mixed.tokens.length - 1], alone.tokens[0]);
  report.seeded = { alone: alone.stats, mixed: mixed.stats };
  save();
});
