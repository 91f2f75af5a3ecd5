// `vllm-ts generate MODEL --prompt TEXT [--prompt TEXT ...] [--prompt-file FILE]`:
// offline generation, streamed to the terminal as the engine makes the text. Several
// prompts run together in one batch; their texts come out in the order given, each
// streamed once it is the first unfinished one (the others' text is held until then).
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { RequestOutput } from '../../outputs.js';
import type { SamplingParamsInit } from '../../sampling_params.js';
import { LLM } from '../llm.js';
import { addEngineFlags, engineArgsFromFlags, parseIntFlag, parseNumFlag } from './engine_flags.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** The prompts of --prompt (repeatable) and --prompt-file (one per line; blank lines skipped). */
export function readPrompts(prompts: string[] | undefined, file: string | undefined): string[] {
  const out = [...(prompts ?? [])];
  if (file !== undefined) {
    let text: string;
    try {
      text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
    } catch (e) {
      throw new Error(`--prompt-file ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
    }
    for (const line of text.split(/\r?\n/)) if (line.trim() !== '') out.push(line);
  }
  if (out.length === 0) throw new Error('give a prompt: --prompt TEXT (repeatable) or --prompt-file FILE (one prompt per line)');
  return out;
}

/** Writes the streamed outputs of several prompts in their order (see the file comment). */
export class OrderedPrinter {
  private next = 0;
  private readonly held: string[];
  private readonly finished: boolean[];

  constructor(
    private readonly heads: string[],
    private readonly write: (s: string) => void,
  ) {
    this.held = heads.map(() => '');
    this.finished = heads.map(() => false);
    if (heads.length > 0) this.write(heads[0]);
  }

  add(i: number, text: string, finished: boolean): void {
    if (i === this.next) this.write(text);
    else this.held[i] += text;
    if (finished) this.finished[i] = true;
    while (this.next < this.heads.length && this.finished[this.next]) {
      this.write('\n');
      this.next++;
      if (this.next < this.heads.length) {
        this.write((this.heads.length > 1 ? '\n' : '') + this.heads[this.next] + this.held[this.next]);
        this.held[this.next] = '';
      }
    }
  }
}

export function registerGenerate(program: Command): void {
  const cmd = program
    .command('generate')
    .description('generate completions offline, streamed to the terminal (several prompts run as one batch)')
    .argument('<model>', 'a HuggingFace model folder, or a Hub id (org/name)')
    .option('--prompt <text>', 'a prompt (repeatable)', collect)
    .option('--prompt-file <file>', "prompts, one per line ('-': standard input)")
    .option('--temperature <f>', 'sampling temperature (0 = greedy)', parseNumFlag)
    .option('--top-p <f>', 'nucleus sampling mass', parseNumFlag)
    .option('--top-k <n>', 'sample among the k most likely tokens', parseIntFlag)
    .option('--min-p <f>', 'minimum probability relative to the most likely token', parseNumFlag)
    .option('--max-tokens <n>', 'tokens to generate', parseIntFlag, 64)
    .option('--stop <text...>', 'stop strings')
    .option('--ignore-eos', 'keep generating past EOS')
    .option('--chat', 'apply the chat template to each prompt as one user message')
    .option('--json', 'print each RequestOutput as JSON (one per line) instead of streaming text');
  addEngineFlags(cmd).action(async (model: string, o: Record<string, unknown>) => {
    const prompts = readPrompts(o.prompt as string[] | undefined, o.promptFile as string | undefined);
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
      const inputs = o.chat ? llm.chatPrompts(prompts.map((p) => [{ role: 'user', content: p }])) : prompts;
      if (o.json) {
        const outs: RequestOutput[] = await llm.generate(inputs, params, { useTqdm: false });
        for (const out of outs) process.stdout.write(JSON.stringify(out) + '\n');
        return;
      }
      const printer = new OrderedPrinter(o.chat ? prompts.map(() => '') : prompts, (s) => process.stdout.write(s));
      for await (const [i, out] of llm.stream(inputs, params)) printer.add(i, out.outputs[0]?.text ?? '', out.finished);
    } finally {
      llm.close();
    }
  });
}
