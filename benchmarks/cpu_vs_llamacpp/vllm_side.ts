// vllm-ts's side of benchmarks/cpu_vs_llamacpp, run as a child process per
// measurement (as llama_bench is): the Worker and ModelRunner driven with hand-made
// SchedulerOutputs, as benchmarks/forward.ts does (no scheduler, no detokenizer),
// greedy sampling in the runner; decode steps replay the CPU library's graphs unless
// VLLM_TS_ENFORCE_EAGER=1. Prints one JSON object on stdout.
//   vllm_side.ts bench  <model dir> <threads> <prompt_len> <decode_steps> <prefill_reps>
//   vllm_side.ts greedy <model dir> <threads> <max_tokens> <id> <id> ...
import { resolveEngineArgs } from '../../src/config/engine_args.js';
import { loadModelConfig } from '../../src/config/model_config.js';
import type { SchedulerOutput } from '../../src/core/sched/output.js';
import { SamplingParams } from '../../src/sampling_params.js';
import { Worker } from '../../src/worker/worker.js';

const params = SamplingParams.create({ temperature: 0, maxTokens: 100000 });

/** A step that starts request `id` with its whole prompt. */
function prefillStep(id: string, tokens: number[], blocks: number[]): SchedulerOutput {
  return {
    scheduledNewReqs: [{ reqId: id, promptTokenIds: tokens, samplingParams: params, blockIds: blocks, numComputedTokens: 0, outputTokenIds: [], eosTokenIds: [] }],
    scheduledCachedReqs: { reqIds: [], newBlockIds: [], numComputedTokens: [] },
    numScheduledTokens: { [id]: tokens.length },
    totalNumScheduledTokens: tokens.length,
    finishedReqIds: [],
    preemptedReqIds: [],
  };
}

/** One decode token of request `id` after `computed` tokens. */
function decodeStep(id: string, computed: number): SchedulerOutput {
  return {
    scheduledNewReqs: [],
    scheduledCachedReqs: { reqIds: [id], newBlockIds: [[]], numComputedTokens: [computed] },
    numScheduledTokens: { [id]: 1 },
    totalNumScheduledTokens: 1,
    finishedReqIds: [],
    preemptedReqIds: [],
  };
}

function finishStep(id: string): SchedulerOutput {
  return { ...decodeStep(id, 0), scheduledCachedReqs: { reqIds: [], newBlockIds: [], numComputedTokens: [] }, numScheduledTokens: {}, totalNumScheduledTokens: 0, finishedReqIds: [id] };
}

function openWorker(dir: string, numThreads: number) {
  const config = loadModelConfig(dir, { maxModelLen: 2048 });
  const worker = Worker.create(resolveEngineArgs({ model: dir, numThreads, device: 'cpu', kvCacheMemoryBytes: 256 << 20, maxNumSeqs: 1, enforceEager: process.env.VLLM_TS_ENFORCE_EAGER === '1' }), config);
  const blocks = Array.from({ length: Math.ceil(2048 / worker.info.blockSize) }, (_, i) => i + 1);
  return { worker, runner: worker.runner, blocks, vocab: config.vocabSize };
}

const [mode, dir, threadsArg, ...rest] = process.argv.slice(2);
const { worker, runner, blocks, vocab } = openWorker(dir, Number(threadsArg));
if (mode === 'bench') {
  const [promptLen, steps, reps] = rest.map(Number);
  const prompt = Array.from({ length: promptLen }, (_, i) => 3 + ((i * 7919) % (vocab - 3)));
  let prefill = Infinity;
  for (let r = 0; r <= reps; r++) {  // one warm-up, then `reps` timed, the fastest kept
    const t0 = performance.now();
    runner.execute(prefillStep(`p${r}`, prompt, blocks));
    const dt = performance.now() - t0;
    if (r > 0) prefill = Math.min(prefill, dt);
    runner.execute(finishStep(`p${r}`));
  }
  runner.execute(prefillStep('d', prompt, blocks));
  let pos = promptLen;
  for (let i = 0; i < 8; i++) runner.execute(decodeStep('d', pos++));  // warm-up steps
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) runner.execute(decodeStep('d', pos++));
  const decodeMs = (performance.now() - t0) / steps;
  console.log(JSON.stringify({ prefill_ms: prefill, decode_ms: decodeMs, vocab }));
} else if (mode === 'greedy') {
  const [maxTokens, ...ids] = rest.map(Number);
  const out: number[] = [];
  out.push(runner.execute(prefillStep('g', ids, blocks)).sampledTokenIds[0][0]);
  for (let pos = ids.length; out.length < maxTokens; pos++) out.push(runner.execute(decodeStep('g', pos)).sampledTokenIds[0][0]);
  console.log(JSON.stringify({ ids: out }));
} else {
  throw new Error(`vllm_side.ts: unknown mode ${mode} (bench | greedy)`);
}
worker.shutdown();
