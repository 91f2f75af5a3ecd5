// N-gram speculative decoding on CUDA (skips without a GPU): greedy tokens the same
// with and without speculation up to bf16 ties (see below), with CUDA graphs (plain decode steps replay graphs,
// steps that verify drafts run eagerly) and with --enforce-eager, in a mixed batch
// with chunked prefill and preemption; a seeded request's tokens do not depend on its
// batch under speculation; every block free afterwards. Acceptance counts go to
// $VLLM_TS_GPU_REPORT/spec_decode.json when that folder is set.
//
// NOTE: on CUDA a verification step is a multi-token forward (the prefill attention
// kernel, cuBLASLt once a step has more than 16 rows) where a plain step is a
// one-token decode (the split-K decode kernel, the skinny GEMM), so their bf16 logits
// differ by rounding (CUDA runs no float32), and greedy decoding of the random-token
// prompts, whose top two logits are often equal in bf16, flips at such ties. Measured
// on the H200 (2026-12-02): 16 of the 32 prompts diverged under speculation, each at a
// position where the plain run's top two logprobs were within 0.25 nats (10 of the 16
// at 0 or one bf16 step, 0.0625 for logits between 8 and 16). vLLM's own n-gram e2e test asks
// only 66% of its prompts to match for this reason; the count depends on the prompt
// set, so this test checks what separates rounding from a bug instead: every
// divergence starts at a plain-run margin of at most 0.5 nats (8 bf16 steps); a wrong
// accept or a broken KV rollback diverges at clear margins. The CPU test
// (tests/engine) asserts exact identity, every path there sharing one reduction order.
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
    return { tokens: outs.map((o) => o.outputs[0].tokenIds), logprobs: outs.map((o) => o.outputs[0].logprobs),
      stats, preemptions: core.scheduler.totalNumPreemptions };
  } finally {
    llm.close();
  }
}

const PROMPTS = [
  ...KJV_PROMPTS,
  ...mixedPrompts(24, 3, 120, 4096).map((p) => ({ promptTokenIds: p })),
  { promptTokenIds: Array.from({ length: 60 }, (_, i) => 100 + (i % 7)) },
];

test('greedy on CUDA: the same tokens with and without speculation up to bf16 ties (graphs, eager, chunked prefill, preemption)', { skip }, async () => {
  const params = { temperature: 0, maxTokens: 48, ignoreEos: true };
  const base = await run({}, PROMPTS, { ...params, logprobs: 2 }); // the plain run's top two at every position
  const graphs = await run({ speculativeConfig: SPEC }, PROMPTS, params);
  const eager = await run({ speculativeConfig: SPEC, enforceEager: true }, PROMPTS, params);
  const blockBytes = 2 * 8 * 16 * 2 * 64 * 2; // bf16 KV
  const small = await run({ speculativeConfig: SPEC, maxNumBatchedTokens: 32, kvCacheMemoryBytes: 40 * blockBytes }, PROMPTS, params);
  /** The plain run's top-1 minus top-2 logprob at position pos of prompt i. */
  const margin = (i: number, pos: number) => {
    const lp = Object.values(base.logprobs[i]![pos]).map((l) => l.logprob).sort((a, b) => b - a);
    return lp[0] - lp[1];
  };
  /** Each prompt that differs from the plain run: where, and the plain run's margin there. */
  const diverged = (tokens: number[][]) => tokens.flatMap((t, i) => {
    const pos = t.findIndex((id, j) => id !== base.tokens[i][j]);
    return pos < 0 && t.length === base.tokens[i].length ? [] : [{ prompt: i, pos, margin: pos < 0 ? Infinity : margin(i, pos) }];
  });
  const diffs = { graphs: diverged(graphs.tokens), eager: diverged(eager.tokens), smallCache: diverged(small.tokens) };
  report.greedy = { prompts: PROMPTS.length, graphs: graphs.stats, eager: eager.stats, smallCache: { ...small.stats, preemptions: small.preemptions }, diffs };
  save();
  assert.ok(small.preemptions > 0, 'the small cache forced preemptions');
  for (const [name, d] of Object.entries(diffs)) {
    for (const { prompt, pos, margin: m } of d) assert.ok(m <= 0.5, `${name}: prompt ${prompt} diverges at token ${pos}, where the plain run's margin is ${m}`);
    assert.ok(d.length < PROMPTS.length, `${name}: every prompt differs from the plain run`);
  }
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
