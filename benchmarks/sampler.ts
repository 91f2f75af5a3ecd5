// CPU sampling benchmark (issue 13): the host sampler (TypeScript over an f32 copy of
// the logits) against the native vt_sample (+ vt_logprobs) on the same logits, at the
// sampling seam (worker/sampler.ts), for the vocabularies of tiny-llama-kjv, Llama-2 and
// Llama-3, batch sizes 1..256 and vLLM's usual parameter mixes. The two run alternately
// on each case (the machine is shared), and the report is the median of each and their ratio.
//   npx tsx benchmarks/sampler.ts [--threads 2] [--reps 15] [--json out.json]
import { writeFileSync } from 'node:fs';
import { DType, loadNative, Tensor, Workspace } from '../src/native/index.js';
import { SamplingGenerator } from '../src/model_executor/layers/sampling/generator.js';
import { SamplingParams, type SamplingParamsInput } from '../src/sampling_params.js';
import { DeviceSampler } from '../src/worker/device_sampler.js';
import { HostSampler } from '../src/worker/host_sampler.js';
import type { CachedRequestState } from '../src/worker/input_batch.js';

const args = process.argv.slice(2);
const flag = (name: string, def: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const threads = Number(flag('--threads', '2'));
const reps = Number(flag('--reps', '15'));
const jsonOut = flag('--json', '');

const MIXES: Record<string, SamplingParamsInput> = {
  // vLLM's benchmark_latency / benchmark_throughput: temperature 1, top-p 1.
  'T=1': { temperature: 1, topP: 1 },
  'T=0.8 top-p 0.9 top-k 50': { temperature: 0.8, topP: 0.9, topK: 50 },
  'T=0.7 top-p 0.95 logprobs 5': { temperature: 0.7, topP: 0.95, logprobs: 5 },
  // Rare features: both paths sample these rows on the host.
  'T=0.8 top-p 0.9 + penalties': { temperature: 0.8, topP: 0.9, repetitionPenalty: 1.1, frequencyPenalty: 0.2, presencePenalty: 0.2 },
};
const VOCABS = [4096, 32000, 128256];
const BATCHES = [1, 8, 64, 256];

const ops = loadNative('cpu');
ops.init(0, threads);
const ws = new Workspace(ops);
const g = new SamplingGenerator(1);

/** Logits shaped like a language model's: a normal body and a few strong candidates. */
function makeLogits(R: number, V: number): Float32Array {
  const out = new Float32Array(R * V);
  for (let i = 0; i < out.length; i++) {
    const u = Math.max(g.random(), 1e-12);
    out[i] = 2 * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * g.random());
  }
  for (let r = 0; r < R; r++) for (let j = 0; j < 8; j++) out[r * V + Math.floor(g.random() * V)] += 8 + j;
  return out;
}

function states(R: number, V: number, init: SamplingParamsInput): CachedRequestState[] {
  return Array.from({ length: R }, (_, i) => ({
    reqId: `r${i}`,
    promptTokenIds: Array.from({ length: 128 }, () => Math.floor(g.random() * V)),
    outputTokenIds: Array.from({ length: 64 }, () => Math.floor(g.random() * V)),
    samplingParams: SamplingParams.create({ ...init, seed: i % 2 ? i : null, maxTokens: 1000 }),
    eosTokenIds: [2],
    blockIds: [],
    numComputedTokens: 0,
  }));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const results: { vocab: number; batch: number; mix: string; hostMs: number; nativeMs: number; ratio: number }[] = [];
for (const V of VOCABS) {
  for (const R of BATCHES) {
    const src = makeLogits(R, V);
    const logits = Tensor.empty(ops, [R, V], DType.F32);
    for (const [mix, init] of Object.entries(MIXES)) {
      const reqs = states(R, V, init);
      const host = new HostSampler(0);
      const native = new DeviceSampler(ops, DType.F32, host, 0);
      const time = (f: () => void) => {
        logits.copyFromHost(src); // both overwrite the logits in place
        const t0 = performance.now();
        f();
        return performance.now() - t0;
      };
      const runHost = () => host.sample(logits.toF32(), V, reqs);
      const runNative = () => {
        native.sample(ws, logits, reqs);
        ws.reset();
      };
      time(runHost);
      time(runNative);
      const h: number[] = [];
      const n: number[] = [];
      for (let i = 0; i < reps; i++) {
        if (i % 2) {
          h.push(time(runHost));
          n.push(time(runNative));
        } else {
          n.push(time(runNative));
          h.push(time(runHost));
        }
      }
      const row = { vocab: V, batch: R, mix, hostMs: median(h), nativeMs: median(n), ratio: median(h) / median(n) };
      results.push(row);
      console.log(`vocab ${String(V).padStart(6)} batch ${String(R).padStart(3)}  ${mix.padEnd(30)} host ${row.hostMs.toFixed(3).padStart(8)} ms  native ${row.nativeMs.toFixed(3).padStart(8)} ms  host/native ${row.ratio.toFixed(2)}`);
    }
    logits.dispose();
  }
}
ws.dispose();
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ date: new Date().toISOString(), threads, reps, results }, null, 2));
