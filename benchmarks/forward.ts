// Forward-pass benchmark (issue 2): prefill tokens/s for a 512-token prompt and
// batch-1 decode tokens/s, through the Worker and ModelRunner with hand-made
// SchedulerOutputs (no scheduler, no detokenizer), for 1 and 2 threads, beside
// the machine's memory read bandwidth.
//   npx tsx benchmarks/forward.ts [--threads 1,2] [--models tiny,110m] [--enforce-eager] [--json out.json]
// (--enforce-eager: decode steps run op by op instead of replaying the CPU library's graphs)
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { resolveEngineArgs } from '../src/config/engine_args.js';
import { loadModelConfig } from '../src/config/model_config.js';
import type { ModelConfig } from '../src/config/types.js';
import type { SchedulerOutput } from '../src/core/sched/output.js';
import { SamplingParams } from '../src/sampling_params.js';
import { Worker } from '../src/worker/worker.js';

const args = process.argv.slice(2);
const flag = (name: string, def: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const threadList = flag('--threads', '1,2').split(',').map(Number);
const jsonOut = flag('--json', '');
const enforceEager = args.includes('--enforce-eager');
const modelKeys = flag('--models', 'tiny,110m').split(',');

const MODELS = [
  { key: 'tiny', name: 'tiny-llama-kjv', dir: 'models/tiny-llama-kjv', loadFormat: 'auto' as const },
  { key: '110m', name: 'llama-110m (dummy bf16)', dir: 'benchmarks/configs/llama-110m', loadFormat: 'dummy' as const },
].filter((m) => modelKeys.includes(m.key));

function weightBytesPerToken(c: ModelConfig): number {
  // Every weight but the embedding table is read once per decode step (bf16: 2 bytes).
  const { hiddenSize: h, intermediateSize: f, numAttentionHeads: H, numKeyValueHeads: KV, headDim: D, vocabSize: V } = c;
  const layer = h * (H + 2 * KV) * D + H * D * h + 3 * h * f + 2 * h;
  const bytesPer = c.dtype === 'float32' ? 4 : 2;
  return (c.numHiddenLayers * layer + h + V * h) * bytesPer;
}

function so(newReq: { id: string; tokens: number[]; blocks: number[] } | null, cached: { id: string; computed: number; n: number } | null, finished: string[] = []): SchedulerOutput {
  const params = SamplingParams.create({ temperature: 0, maxTokens: 100000 });
  return {
    scheduledNewReqs: newReq ? [{ reqId: newReq.id, promptTokenIds: newReq.tokens, samplingParams: params, blockIds: newReq.blocks, numComputedTokens: 0, outputTokenIds: [], eosTokenIds: [] }] : [],
    scheduledCachedReqs: cached ? { reqIds: [cached.id], newBlockIds: [[]], numComputedTokens: [cached.computed] } : { reqIds: [], newBlockIds: [], numComputedTokens: [] },
    numScheduledTokens: newReq ? { [newReq.id]: newReq.tokens.length } : cached ? { [cached.id]: cached.n } : {},
    totalNumScheduledTokens: newReq ? newReq.tokens.length : cached ? cached.n : 0,
    finishedReqIds: finished,
    preemptedReqIds: [],
  };
}

function measure(dir: string, loadFormat: 'auto' | 'dummy', numThreads: number) {
  const config = loadModelConfig(dir, { maxModelLen: 2048 });
  const worker = Worker.create(resolveEngineArgs({ model: dir, loadFormat, numThreads, device: 'cpu', kvCacheMemoryBytes: 256 << 20, maxNumSeqs: 1, enforceEager }), config);
  const r = worker.runner;
  const bs = worker.info.blockSize;
  const blocks = Array.from({ length: Math.ceil(2048 / bs) }, (_, i) => i + 1);
  const prompt = Array.from({ length: 512 }, (_, i) => 3 + ((i * 7919) % (config.vocabSize - 3)));
  // prefill: 3 warm-up + 5 timed runs of a fresh 512-token request
  let prefill = Infinity;
  for (let rep = 0; rep < 8; rep++) {
    const id = `p${rep}`;
    const t0 = performance.now();
    r.execute(so({ id, tokens: prompt, blocks }, null));
    const dt = performance.now() - t0;
    if (rep >= 3) prefill = Math.min(prefill, dt);
    r.execute(so(null, null, [id]));
  }
  // decode: 128 steps after the 512-token prompt (context 513..640)
  r.execute(so({ id: 'd', tokens: prompt, blocks }, null));
  const steps = 128;
  for (let i = 0; i < 8; i++) r.execute(so(null, { id: 'd', computed: 512 + i, n: 1 }));
  const t0 = performance.now();
  for (let i = 8; i < 8 + steps; i++) r.execute(so(null, { id: 'd', computed: 512 + i, n: 1 }));
  const decodeMs = (performance.now() - t0) / steps;
  worker.shutdown();
  return { prefillTokPerS: 512 / (prefill / 1000), decodeMsPerToken: decodeMs, decodeTokPerS: 1000 / decodeMs, bytesPerToken: weightBytesPerToken(config), params: config };
}

mkdirSync('build', { recursive: true });
execFileSync('g++', ['-O3', '-march=native', '-pthread', '-o', 'build/membw', 'benchmarks/membw.cpp']);
const bw = new Map<number, number>(
  execFileSync('build/membw', [String(Math.max(...threadList))], { encoding: 'utf8' }).trim().split('\n').map((l) => l.split(' ').map(Number) as [number, number]),
);

const rows: Record<string, unknown>[] = [];
for (const m of MODELS) {
  for (const t of threadList) {
    const res = measure(m.dir, m.loadFormat, t);
    const gbps = bw.get(t)!;
    const floorMs = (res.bytesPerToken / (gbps * 1e9)) * 1000;
    const row = {
      model: m.name, threads: t, prefill_tok_s: +res.prefillTokPerS.toFixed(0), decode_tok_s: +res.decodeTokPerS.toFixed(0),
      decode_ms: +res.decodeMsPerToken.toFixed(3), weight_mb_per_token: +(res.bytesPerToken / 1e6).toFixed(1),
      read_gb_s: gbps, floor_ms: +floorMs.toFixed(3), ratio_to_floor: +(res.decodeMsPerToken / floorMs).toFixed(2),
    };
    rows.push(row);
    console.log(JSON.stringify(row));
  }
}
console.table(rows);
if (jsonOut) {
  writeFileSync(jsonOut, JSON.stringify({ benchmark: 'forward', date: new Date().toISOString(), cpu: cpus()[0]?.model, cores: cpus().length, command: `npx tsx benchmarks/forward.ts ${args.join(' ')}`, results: rows }, null, 2) + '\n');
}
