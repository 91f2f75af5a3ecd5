// `vllm-ts bench latency|throughput`: vLLM's offline benchmarks (benchmark_latency,
// benchmark_throughput) with the same definitions. `bench serve` is added by the
// server's own file.
import { writeFileSync } from 'node:fs';
import { hostname, cpus } from 'node:os';
import type { Command } from 'commander';
import { LLM } from '../llm.js';
import { SamplingParams } from '../../sampling_params.js';
import { addEngineFlags, engineArgsFromFlags, parseIntFlag } from './engine_flags.js';
import { SamplingGenerator } from '../../model_executor/layers/sampler.js';

/** Random prompt token ids (vLLM's dummy prompts: uniform ids below min(vocab, 10000)). */
export function randomPrompts(num: number, len: number, vocab: number, seed: number): { promptTokenIds: number[] }[] {
  const g = new SamplingGenerator(seed);
  const hi = Math.min(vocab, 10000);
  return Array.from({ length: num }, () => ({
    promptTokenIds: Array.from({ length: len }, () => Math.floor(g.random() * hi)),
  }));
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(idx);
  const hi = Math.ceil(idx);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (idx - lo);
}

function machine(device: string, deviceName: string) {
  return { host: hostname(), cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, device, deviceName };
}

function writeResult(path: string | undefined, result: Record<string, unknown>): void {
  if (path) writeFileSync(path, JSON.stringify(result, null, 2) + '\n');
}

/**
 * Runs a benchmark body over an engine built from the command's flags, with `num`
 * random prompts of --input-len tokens and sampling params generating exactly
 * --output-len tokens (ignore_eos), as vLLM's benchmarks do.
 */
async function withBenchEngine(model: string, o: Record<string, unknown>, num: number,
  fn: (llm: LLM, prompts: { promptTokenIds: number[] }[], params: SamplingParams) => Promise<void>): Promise<void> {
  const llm = await LLM.create({ ...engineArgsFromFlags(model, o), useTqdm: false });
  try {
    const prompts = randomPrompts(num, o.inputLen as number, llm.engine.modelConfig.vocabSize, 0);
    const params = SamplingParams.create({ temperature: 1, topP: 1, ignoreEos: true, maxTokens: o.outputLen as number });
    await fn(llm, prompts, params);
  } finally {
    llm.close();
  }
}

export function registerBench(program: Command): Command {
  const bench = program.command('bench').description('benchmarks with vLLM definitions');

  const latency = bench
    .command('latency')
    .description('end-to-end latency of one batch (vLLM benchmark_latency)')
    .argument('<model>', 'a HuggingFace model folder, or a Hub id (org/name)')
    .option('--input-len <n>', 'prompt tokens', parseIntFlag, 32)
    .option('--output-len <n>', 'generated tokens', parseIntFlag, 128)
    .option('--batch-size <n>', 'prompts in the batch', parseIntFlag, 8)
    .option('--num-iters-warmup <n>', 'warm-up iterations', parseIntFlag, 3)
    .option('--num-iters <n>', 'measured iterations', parseIntFlag, 10)
    .option('--output-json <path>', 'write the result as JSON');
  addEngineFlags(latency).action((model: string, o: Record<string, unknown>) =>
    withBenchEngine(model, o, o.batchSize as number, async (llm, prompts, params) => {
      const ttfts: number[] = [];
      const tpots: number[] = [];
      const run = async (record: boolean) => {
        const t0 = performance.now();
        const outs = await llm.generate(prompts, params, { useTqdm: false });
        const secs = (performance.now() - t0) / 1000;
        if (record) {
          // Per request: time to its first token, and the mean time per later token.
          for (const out of outs) {
            const m = out.metrics;
            if (!m?.firstTokenTime || !m.finishedTime) continue;
            ttfts.push(m.firstTokenTime - t0 / 1000 - performance.timeOrigin / 1000);
            const n = out.outputs[0].tokenIds.length;
            if (n > 1) tpots.push((m.finishedTime - m.firstTokenTime) / (n - 1));
          }
        }
        return secs;
      };
      for (let i = 0; i < (o.numItersWarmup as number); i++) await run(false);
      const lat: number[] = [];
      for (let i = 0; i < (o.numIters as number); i++) lat.push(await run(true));
      lat.sort((a, b) => a - b);
      const avg = lat.reduce((a, b) => a + b, 0) / lat.length;
      const pcts = Object.fromEntries([10, 25, 50, 75, 90, 99].map((p) => [p, percentile(lat, p)]));
      console.log(`Avg latency: ${avg.toFixed(4)} seconds`);
      for (const [p, v] of Object.entries(pcts)) console.log(`${p}% percentile latency: ${v.toFixed(4)} seconds`);
      const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
      const ttft = mean(ttfts);
      const tpot = mean(tpots);
      console.log(`Avg TTFT: ${(ttft * 1000).toFixed(2)} ms, avg TPOT: ${(tpot * 1000).toFixed(2)} ms (${(1 / tpot).toFixed(1)} tokens/s per request)`);
      const info = llm.engine.engineCore.workerInfo;
      writeResult(o.outputJson as string | undefined, {
        benchmark: 'latency', date: new Date().toISOString(), command: process.argv.slice(2).join(' '),
        machine: machine(info.device, info.deviceName), avg_latency: avg, latencies: lat, percentiles: pcts,
        avg_ttft: ttft, avg_tpot: tpot,
        input_len: o.inputLen, output_len: o.outputLen, batch_size: o.batchSize, tensor_parallel_size: o.tensorParallelSize,
      });
    }),
  );

  const throughput = bench
    .command('throughput')
    .description('offline throughput over random prompts (vLLM benchmark_throughput)')
    .argument('<model>', 'a HuggingFace model folder, or a Hub id (org/name)')
    .option('--input-len <n>', 'prompt tokens', parseIntFlag, 128)
    .option('--output-len <n>', 'generated tokens', parseIntFlag, 128)
    .option('--num-prompts <n>', 'prompts', parseIntFlag, 100)
    .option('--output-json <path>', 'write the result as JSON');
  addEngineFlags(throughput).action((model: string, o: Record<string, unknown>) =>
    withBenchEngine(model, o, o.numPrompts as number, async (llm, prompts, params) => {
      const n = prompts.length;
      const t0 = performance.now();
      const outs = await llm.generate(prompts, params, { useTqdm: false });
      const secs = (performance.now() - t0) / 1000;
      const promptToks = outs.reduce((a, r) => a + r.promptTokenIds.length, 0);
      const outToks = outs.reduce((a, r) => a + r.outputs[0].tokenIds.length, 0);
      console.log(
        `Throughput: ${(n / secs).toFixed(2)} requests/s, ${((promptToks + outToks) / secs).toFixed(2)} total tokens/s, ` +
          `${(outToks / secs).toFixed(2)} output tokens/s`,
      );
      const info = llm.engine.engineCore.workerInfo;
      writeResult(o.outputJson as string | undefined, {
        benchmark: 'throughput', date: new Date().toISOString(), command: process.argv.slice(2).join(' '),
        machine: machine(info.device, info.deviceName), elapsed_time: secs, num_requests: n,
        total_num_tokens: promptToks + outToks, requests_per_second: n / secs,
        tokens_per_second: (promptToks + outToks) / secs, output_tokens_per_second: outToks / secs,
        input_len: o.inputLen, output_len: o.outputLen, tensor_parallel_size: o.tensorParallelSize,
      });
    }),
  );
  return bench;
}
