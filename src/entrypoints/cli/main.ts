#!/usr/bin/env node
// The `vllm-ts` command: serve, generate, bench latency|throughput|serve.
import { Command } from 'commander';
import { VERSION } from '../openai/api_server.js';
import { registerBench } from './bench.js';
import { registerBenchServe } from './bench_serve.js';
import { expandVllmShortFlags } from './engine_flags.js';
import { registerGenerate } from './generate.js';
import { registerServe } from './serve.js';

const program = new Command('vllm-ts')
  .description("vLLM's V1 inference and serving engine, in TypeScript")
  .version(VERSION)
  .showHelpAfterError();

registerServe(program);
registerGenerate(program);
const bench = registerBench(program);
registerBenchServe(bench);

try {
  await program.parseAsync(expandVllmShortFlags(process.argv));
} catch (e) {
  process.stderr.write(`vllm-ts: ${(e as Error).message}\n`);
  process.exit(1);
}
