// Prefix-caching benchmark (issue 7): N requests that share a long system prompt
// followed by distinct questions, served one after another, with caching on and
// off. Reports prompt tokens actually computed and time to first token.
//   npx tsx benchmarks/prefix_caching.ts [--model DIR] [--load-format dummy] [--tokenizer DIR]
//       [--device cpu|cuda] [--num-prompts 200] [--prefix-len 1024] [--question-len 64] [--json out.json]
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { LLMEngine } from '../src/engine/llm_engine.js';
import { SamplingGenerator } from '../src/model_executor/layers/sampling/generator.js';
import { SamplingParams } from '../src/sampling_params.js';

const args = process.argv.slice(2);
const flag = (name: string, def: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const model = flag('--model', 'models/tiny-llama-kjv');
const numPrompts = Number(flag('--num-prompts', '200'));
const prefixLen = Number(flag('--prefix-len', '1024'));
const questionLen = Number(flag('--question-len', '64'));

async function run(enablePrefixCaching: boolean) {
  const engine = await LLMEngine.create({
    model, tokenizer: flag('--tokenizer', model), device: flag('--device', 'auto') as 'auto',
    loadFormat: flag('--load-format', 'auto') as 'auto', enablePrefixCaching, maxModelLen: 2048,
    maxNumBatchedTokens: 2048, kvCacheMemoryBytes: 512 << 20,
  });
  const V = Math.min(engine.modelConfig.vocabSize, 4096);
  const g = new SamplingGenerator(42);
  const ids = (n: number) => Array.from({ length: n }, () => 3 + Math.floor(g.random() * (V - 3)));
  const system = ids(prefixLen);
  const params = SamplingParams.create({ temperature: 0, maxTokens: 1, ignoreEos: true });
  const ttft: number[] = [];
  let computed = 0;
  let total = 0;
  for (let i = 0; i < numPrompts; i++) {
    const prompt = [...system, ...ids(questionLen)];
    const t0 = performance.now();
    engine.addRequest(`r${i}`, { promptTokenIds: prompt }, params);
    let first = -1;
    while (engine.hasUnfinishedRequests()) {
      for (const o of engine.step()) {
        if (first < 0 && o.outputs[0].tokenIds.length > 0) first = performance.now() - t0;
        if (o.finished) {
          computed += prompt.length - o.numCachedTokens;
          total += prompt.length;
        }
      }
    }
    ttft.push(first);
  }
  engine.shutdown();
  ttft.sort((a, b) => a - b);
  return {
    enablePrefixCaching, promptTokens: total, computedPromptTokens: computed,
    meanTtftMs: ttft.reduce((a, b) => a + b, 0) / ttft.length, medianTtftMs: ttft[Math.floor(ttft.length / 2)],
  };
}

const off = await run(false);
const on = await run(true);
const result = {
  benchmark: 'prefix_caching', date: new Date().toISOString(), cpu: cpus()[0]?.model, command: `npx tsx benchmarks/prefix_caching.ts ${args.join(' ')}`,
  model, numPrompts, prefixLen, questionLen, off, on,
  computedTokensReduction: 1 - on.computedPromptTokens / off.computedPromptTokens,
  medianTtftSpeedup: off.medianTtftMs / on.medianTtftMs,
};
console.log(JSON.stringify(result, null, 2));
const out = flag('--json', '');
if (out) writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
