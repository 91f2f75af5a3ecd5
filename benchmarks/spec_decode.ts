// N-gram speculative decoding end to end on the trained tiny model: output tokens/s
// with and without --speculative-config on the same prompts, the two engines side by
// side in one process and alternated round by round (this VM's speed drifts), plus
// the acceptance counts of the speculative engine (vLLM's SpecDecodingStats) and the
// engine steps each took per pass (deterministic for greedy: the noise-free part).
// Prompts: tests/helpers/kjv_prompts.ts (the model asked to recite a KJV verse it has
// just recited) and, for the other end, random token prompts (drafts rarely match).
//   npx tsx benchmarks/spec_decode.ts [--device cpu] [--k 4] [--rounds 5] [--max-tokens 64] [--json out.json]
import { writeFileSync } from 'node:fs';
import { LLM } from '../src/index.js';
import type { SpecDecodingStats } from '../src/core/types.js';
import type { SamplingParamsInput } from '../src/sampling_params.js';
import { KJV_PROMPTS } from '../tests/helpers/kjv_prompts.js';
import { mixedPrompts } from '../tests/helpers/prompts.js';

const argv = process.argv.slice(2);
const flag = (name: string, def: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : def;
};
const device = flag('--device', 'cpu') as 'cpu' | 'cuda';
const K = Number(flag('--k', '4'));
const rounds = Number(flag('--rounds', '5'));
const maxTokens = Number(flag('--max-tokens', '64'));
const jsonOut = flag('--json', '');

const common = { model: 'models/tiny-llama-kjv', device, useTqdm: false, maxModelLen: 1024 } as const;
const plain = await LLM.create(common);
const spec = await LLM.create({ ...common, speculativeConfig: { method: 'ngram', num_speculative_tokens: K, prompt_lookup_max: 4, prompt_lookup_min: 2 } });
const totals = { drafts: 0, draftTokens: 0, accepted: 0 };
/** Engine steps per engine (a noise-free cost measure beside the wall clock). */
const stepCount = new Map<LLM, number>([[plain, 0], [spec, 0]]);
for (const llm of [plain, spec]) {
  const core = llm.engine.engineCore;
  const step = core.step.bind(core);
  core.step = () => {
    stepCount.set(llm, stepCount.get(llm)! + 1);
    const out = step();
    const s: SpecDecodingStats | undefined = out.schedulerStats?.specDecodingStats;
    if (s) {
      totals.drafts += s.numDrafts;
      totals.draftTokens += s.numDraftTokens;
      totals.accepted += s.numAcceptedTokens;
    }
    return out;
  };
}

type Prompt = string | { promptTokenIds: number[] };
const random = mixedPrompts(7, 40, 200, 4096, 3).map((p) => ({ promptTokenIds: p }));
const workloads: { name: string; prompts: Prompt[]; batch: boolean; params: SamplingParamsInput }[] = [
  // The verse the model recites best (its answer to "Recite John 3:16" is John 3:18, every word).
  { name: 'John 3:16 recite, greedy, batch 1', prompts: KJV_PROMPTS.slice(0, 1), batch: false, params: { temperature: 0, maxTokens } },
  { name: 'all 7 KJV recite, greedy, batch 1', prompts: KJV_PROMPTS, batch: false, params: { temperature: 0, maxTokens } },
  { name: 'all 7 KJV recite, greedy, batch 7', prompts: KJV_PROMPTS, batch: true, params: { temperature: 0, maxTokens } },
  { name: 'all 7 KJV recite, T=0.8 seeded, batch 1', prompts: KJV_PROMPTS, batch: false, params: { temperature: 0.8, topP: 0.95, seed: 5, maxTokens } },
  { name: 'random tokens, greedy, batch 1', prompts: random, batch: false, params: { temperature: 0, maxTokens, ignoreEos: true } },
];

/** Output tokens and seconds of one pass over the workload (each prompt alone, or all at once). */
async function pass(llm: LLM, w: (typeof workloads)[number]): Promise<{ tokens: number; s: number }> {
  llm.resetPrefixCache();
  const groups = w.batch ? [w.prompts] : w.prompts.map((p) => [p]);
  let tokens = 0;
  const t0 = performance.now();
  for (const g of groups) for (const o of await llm.generate(g, w.params)) tokens += o.outputs[0].tokenIds.length;
  return { tokens, s: (performance.now() - t0) / 1000 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [];
for (const w of workloads) {
  await pass(plain, w); // warm-up, both
  await pass(spec, w);
  const before = { ...totals };
  const steps0 = [stepCount.get(plain)!, stepCount.get(spec)!];
  const tp: number[] = [];
  const ts: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // Alternate which engine goes first.
    const order = r % 2 === 0 ? [plain, spec] : [spec, plain];
    for (const llm of order) {
      const { tokens, s } = await pass(llm, w);
      (llm === plain ? tp : ts).push(tokens / s);
    }
  }
  const drafted = totals.draftTokens - before.draftTokens;
  const accepted = totals.accepted - before.accepted;
  const drafts = totals.drafts - before.drafts;
  rows.push({
    workload: w.name,
    plainSteps: (stepCount.get(plain)! - steps0[0]) / rounds,
    specSteps: (stepCount.get(spec)! - steps0[1]) / rounds,
    plainTokPerS: +median(tp).toFixed(1),
    specTokPerS: +median(ts).toFixed(1),
    speedup: +(median(ts) / median(tp)).toFixed(2),
    acceptanceRate: +(drafted > 0 ? accepted / drafted : 0).toFixed(3),
    meanAcceptanceLength: +(drafts > 0 ? 1 + accepted / drafts : 1).toFixed(2),
  });
}
console.log(`tiny-llama-kjv on ${plain.engine.engineCore.workerInfo.deviceName}, K=${K}, prompt_lookup 2..4, max_tokens ${maxTokens}, median of ${rounds} alternated rounds`);
console.table(rows);
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ device: plain.engine.engineCore.workerInfo.deviceName, K, maxTokens, rounds, rows }, null, 2));
plain.close();
spec.close();
