// The cost of verification: one engine step's time as a function of K (draft tokens
// per request), through the Worker and ModelRunner with hand-made SchedulerOutputs
// (no scheduler, no proposer): B requests at context C each compute their last token
// plus K drafts and sample K + 1 rows. K = 0 is a plain decode step (on CUDA a
// CUDA-graph replay unless --enforce-eager); K > 0 runs eagerly. The KV cache holds
// whatever it was allocated with (the timing does not depend on its values).
//   npx tsx benchmarks/spec_decode_step.ts [--model benchmarks/configs/llama-3-8b] [--device cuda]
//     [--batch 1,8,32] [--k 0,1,2,4,6,8] [--context 1024] [--steps 20] [--enforce-eager] [--json out.json]
import { writeFileSync } from 'node:fs';
import { resolveEngineArgs } from '../src/config/engine_args.js';
import { loadModelConfig } from '../src/config/model_config.js';
import type { SchedulerOutput } from '../src/core/sched/output.js';
import { SamplingParams } from '../src/sampling_params.js';
import { Worker } from '../src/worker/worker.js';

const argv = process.argv.slice(2);
const flag = (name: string, def: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : def;
};
const model = flag('--model', 'models/tiny-llama-kjv');
const device = flag('--device', 'cpu') as 'cpu' | 'cuda';
const batches = flag('--batch', '1,8').split(',').map(Number);
const ks = flag('--k', '0,1,2,4,6,8').split(',').map(Number);
const context = Number(flag('--context', '1024'));
const steps = Number(flag('--steps', '20'));
const enforceEager = argv.includes('--enforce-eager');
const jsonOut = flag('--json', '');

const maxK = Math.max(...ks);
const maxB = Math.max(...batches);
const config = loadModelConfig(model, { maxModelLen: context + maxK + 16 });
const loadFormat = model.startsWith('benchmarks/configs') ? 'dummy' : 'auto';
const worker = Worker.create(resolveEngineArgs({
  model, device, loadFormat, enforceEager, maxModelLen: config.maxModelLen, maxNumSeqs: maxB,
  maxNumBatchedTokens: Math.max(2048, maxB * (maxK + 1)),
  speculativeConfig: maxK > 0 ? { method: 'ngram', num_speculative_tokens: maxK } : null,
  ...(device === 'cpu' ? { kvCacheMemoryBytes: 1 << 30 } : {}),
}), config);
const runner = worker.runner;
const bs = worker.info.blockSize;
const blocksPerReq = Math.ceil((context + maxK) / bs);
if (maxB * blocksPerReq + 1 > worker.info.numBlocks) throw new Error(`${maxB} x ${blocksPerReq} blocks do not fit the ${worker.info.numBlocks}-block KV cache`);
const params = SamplingParams.create({ temperature: 0, maxTokens: 1 << 20 });
const prompt = Array.from({ length: context }, (_, i) => 3 + ((i * 7919) % (config.vocabSize - 3)));

let serial = 0;
/** One step: B fresh requests whose first context - 1 tokens count as computed, each verifying K drafts. */
function stepOutput(B: number, K: number, finished: string[]): SchedulerOutput {
  const ids = Array.from({ length: B }, () => `s${serial++}`);
  return {
    scheduledNewReqs: ids.map((reqId, r) => ({
      reqId, promptTokenIds: prompt, samplingParams: params, numComputedTokens: context - 1, outputTokenIds: [], eosTokenIds: [],
      blockIds: Array.from({ length: blocksPerReq }, (_, b) => 1 + r * blocksPerReq + b),
    })),
    scheduledCachedReqs: { reqIds: [], newBlockIds: [], numComputedTokens: [] },
    numScheduledTokens: Object.fromEntries(ids.map((id) => [id, 1 + K])),
    scheduledSpecDecodeTokens: K > 0 ? Object.fromEntries(ids.map((id) => [id, prompt.slice(0, K)])) : {},
    totalNumScheduledTokens: B * (1 + K),
    finishedReqIds: finished,
    preemptedReqIds: [],
  };
}

const rows: { batch: number; k: number; msPerStep: number; ratioToK0: number }[] = [];
for (const B of batches) {
  let base = NaN;
  for (const K of ks) {
    let prev: string[] = [];
    const times: number[] = [];
    for (let i = 0; i < steps + 3; i++) {
      const so = stepOutput(B, K, prev);
      const t0 = performance.now();
      runner.execute(so); // returns after the sampled ids reached the host
      if (i >= 3) times.push(performance.now() - t0);
      prev = so.scheduledNewReqs.map((r) => r.reqId);
    }
    runner.execute({ ...stepOutput(0, 0, prev), totalNumScheduledTokens: 0 });
    times.sort((a, b) => a - b);
    const ms = times[Math.floor(times.length / 2)];
    if (K === 0) base = ms;
    rows.push({ batch: B, k: K, msPerStep: +ms.toFixed(3), ratioToK0: +(ms / base).toFixed(3) });
  }
}
console.log(`${config.architectures[0]} (${model}) on ${worker.info.deviceName}, context ${context}, median of ${steps} steps${enforceEager ? ', enforce eager' : ''}`);
console.table(rows);
console.log('A step with K drafts pays off when 1 + E[accepted] > ratioToK0 (E[accepted]: the mean accepted drafts per step).');
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ model, device: worker.info.deviceName, context, steps, enforceEager, rows }, null, 2));
worker.shutdown();
