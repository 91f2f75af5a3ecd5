// The engine flags every command shares (vLLM's names in kebab-case) and their
// mapping onto EngineArgs.
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { EngineArgs } from '../../config/engine_args.js';
import { resolveSpeculativeConfig, type SpeculativeConfigInput } from '../../config/speculative.js';

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`expected an integer, got '${v}'`);
  return n;
};
const num = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got '${v}'`);
  return n;
};

const maxLogprobsFlag = (v: string) => {
  const n = int(v);
  if (n < -1) throw new InvalidArgumentError(`expected -1 (the whole vocabulary) or a count >= 0, got '${v}'`);
  return n;
};

export function addEngineFlags(cmd: Command): Command {
  return cmd
    .addOption(new Option('--device <device>', 'device to run on').choices(['auto', 'cpu', 'cuda']).default('auto'))
    .addOption(new Option('--dtype <dtype>', 'activation and weight dtype on the GPU').choices(['auto', 'bfloat16', 'float16', 'float32']).default('auto'))
    .option('--tokenizer <path-or-id>', 'tokenizer folder or Hub id (default: the model\'s)')
    .option('--revision <rev>', 'Hub branch, tag or commit of the model', 'main')
    .option('--tokenizer-revision <rev>', 'Hub branch, tag or commit of --tokenizer')
    .option('--download-dir <dir>', 'cache folder for Hub downloads (default: $HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub)')
    .option('--max-model-len <n>', 'context length (default: from config.json)', int)
    .option('--block-size <n>', 'tokens per KV-cache block', int, 16)
    .option('--max-num-seqs <n>', 'maximum sequences per step', int, 256)
    .option('--max-num-batched-tokens <n>', 'token budget per step', int, 2048)
    .option('--seed <n>', 'engine-wide random seed', int, 0)
    .option('--num-threads <n>', 'CPU threads for the native kernels (default: all cores)', int)
    .option('--kv-cache-memory-bytes <n>', 'CPU: bytes for the KV cache', int)
    .option('--gpu-memory-utilization <f>', 'CUDA: fraction of GPU memory to use', num, 0.9)
    .option('--no-enable-prefix-caching', 'disable automatic prefix caching')
    .addOption(new Option('--generation-config <src>', "'auto' (the model's generation_config.json) or 'vllm'").choices(['auto', 'vllm']).default('auto'))
    .addOption(new Option('--load-format <fmt>', "'auto' or 'dummy' (random weights)").choices(['auto', 'dummy']).default('auto'))
    .option('--tensor-parallel-size <n>', 'ranks (GPUs) to shard the model over (also -tp, as in vLLM)', int, 1)
    .option('--enforce-eager', 'disable graphs of decode steps (CUDA graphs; the CPU library\'s recorded ones)', false)
    .option('--max-logprobs <n>', 'most (prompt) logprobs a request may ask for per position (-1: the whole vocabulary)', maxLogprobsFlag, 20)
    .addOption(new Option('--reasoning-parser <name>', 'split <think> reasoning from the answer (grammars start after it)').choices(['qwen3', 'deepseek_r1']))
    .option('--structured-outputs-config <json>', 'structured-output defaults, e.g. \'{"disable_any_whitespace": true}\'', parseStructuredOutputsConfig)
    .option('--speculative-config <json>', 'speculative decoding, e.g. \'{"method": "ngram", "num_speculative_tokens": 4, "prompt_lookup_max": 4, "prompt_lookup_min": 2}\'', parseSpeculativeConfig);
}

function parseSpeculativeConfig(v: string): EngineArgs['speculativeConfig'] {
  let o: unknown;
  try {
    o = JSON.parse(v);
  } catch {
    throw new InvalidArgumentError(`expected JSON, got '${v}'`);
  }
  try {
    resolveSpeculativeConfig(o as SpeculativeConfigInput);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
  return o as SpeculativeConfigInput;
}

function parseStructuredOutputsConfig(v: string): EngineArgs['structuredOutputsConfig'] {
  let o: unknown;
  try {
    o = JSON.parse(v);
  } catch {
    throw new InvalidArgumentError(`expected JSON, got '${v}'`);
  }
  if (o === null || typeof o !== 'object') throw new InvalidArgumentError('expected a JSON object');
  const cfg: NonNullable<EngineArgs['structuredOutputsConfig']> = {};
  for (const [k, val] of Object.entries(o)) {
    if (k === 'disable_any_whitespace' && typeof val === 'boolean') cfg.disableAnyWhitespace = val;
    else if (k !== 'backend' || val !== 'xgrammar') throw new InvalidArgumentError(`unsupported structured-outputs setting ${k}=${JSON.stringify(val)} (known: disable_any_whitespace, backend "xgrammar")`);
  }
  return cfg;
}

export function engineArgsFromFlags(model: string, o: Record<string, unknown>): EngineArgs {
  return {
    model,
    tokenizer: o.tokenizer as string | undefined,
    revision: o.revision as string | undefined,
    tokenizerRevision: o.tokenizerRevision as string | undefined,
    downloadDir: o.downloadDir as string | undefined,
    device: o.device as EngineArgs['device'],
    dtype: o.dtype as EngineArgs['dtype'],
    maxModelLen: o.maxModelLen as number | undefined,
    blockSize: o.blockSize as number,
    maxNumSeqs: o.maxNumSeqs as number,
    maxNumBatchedTokens: o.maxNumBatchedTokens as number,
    seed: o.seed as number,
    numThreads: o.numThreads as number | undefined,
    kvCacheMemoryBytes: o.kvCacheMemoryBytes as number | undefined,
    gpuMemoryUtilization: o.gpuMemoryUtilization as number,
    enablePrefixCaching: o.enablePrefixCaching as boolean,
    generationConfig: o.generationConfig as EngineArgs['generationConfig'],
    loadFormat: o.loadFormat as EngineArgs['loadFormat'],
    enforceEager: o.enforceEager as boolean,
    tensorParallelSize: o.tensorParallelSize as number,
    maxLogprobs: o.maxLogprobs as number,
    reasoningParser: o.reasoningParser as string | undefined,
    structuredOutputsConfig: o.structuredOutputsConfig as EngineArgs['structuredOutputsConfig'],
    speculativeConfig: o.speculativeConfig as EngineArgs['speculativeConfig'],
  };
}

export const parseIntFlag = int;
export const parseNumFlag = num;

/** vLLM's multi-letter short flags (argparse has them, commander does not): -tp N, -tp=N. */
const VLLM_SHORT_FLAGS: Record<string, string> = { '-tp': '--tensor-parallel-size' };

/** argv with vLLM's short flags spelled out (everything else untouched). */
export function expandVllmShortFlags(argv: readonly string[]): string[] {
  return argv.map((a) => {
    const [flag, ...rest] = a.split('=');
    const long = VLLM_SHORT_FLAGS[flag];
    return long === undefined ? a : [long, ...rest].join('=');
  });
}
