// `vllm-ts generate MODEL --prompt TEXT ...`: one offline generation, printed.
import type { Command } from 'commander';
import { LLM } from '../llm.js';
import type { SamplingParamsInit } from '../../sampling_params.js';
import { addEngineFlags, engineArgsFromFlags, parseIntFlag, parseNumFlag } from './engine_flags.js';

export function registerGenerate(program: Command): void {
  const cmd = program
    .command('generate')
    .description('generate a completion for one prompt, offline')
    .argument('<model>', 'a HuggingFace model folder, or a Hub id (org/name)')
    .requiredOption('--prompt <text>', 'the prompt')
    .option('--temperature <f>', 'sampling temperature (0 = greedy)', parseNumFlag)
    .option('--top-p <f>', 'nucleus sampling mass', parseNumFlag)
    .option('--top-k <n>', 'sample among the k most likely tokens', parseIntFlag)
    .option('--min-p <f>', 'minimum probability relative to the most likely token', parseNumFlag)
    .option('--max-tokens <n>', 'tokens to generate', parseIntFlag, 64)
    .option('--stop <text...>', 'stop strings')
    .option('--ignore-eos', 'keep generating past EOS')
    .option('--chat', 'apply the chat template to the prompt as one user message')
    .option('--json', 'print the RequestOutput as JSON');
  addEngineFlags(cmd).action(async (model: string, o: Record<string, unknown>) => {
    const llm = await LLM.create({ ...engineArgsFromFlags(model, o), useTqdm: false });
    try {
      const base = llm.getDefaultSamplingParams();
      const params: Partial<SamplingParamsInit> = { ...base, maxTokens: o.maxTokens as number };
      if (o.temperature !== undefined) params.temperature = o.temperature as number;
      if (o.topP !== undefined) params.topP = o.topP as number;
      if (o.topK !== undefined) params.topK = o.topK as number;
      if (o.minP !== undefined) params.minP = o.minP as number;
      params.seed = o.seed as number; // --seed seeds this request as well as the engine
      if (o.stop) params.stop = o.stop as string[];
      if (o.ignoreEos) params.ignoreEos = true;
      const prompt = o.prompt as string;
      const [out] = o.chat
        ? await llm.chat([{ role: 'user', content: prompt }], params)
        : await llm.generate(prompt, params);
      if (o.json) process.stdout.write(JSON.stringify(out, null, 2) + '\n');
      else process.stdout.write((o.chat ? '' : prompt) + out.outputs[0].text + '\n');
    } finally {
      llm.close();
    }
  });
}
