// llama.cpp end to end from Node, beside `vllm-ts bench latency` batch 1:
// node-llama-cpp's own generation loop (LlamaContextSequence.evaluate, greedy, its
// native sampler) over the same prompt tokens, loaded from the scratch folder
// run.ts installs it into. Prints one JSON object: TTFT and TPOT, averaged over iters.
// yieldEogToken keeps it generating past end-of-generation tokens (bench latency's
// ignore_eos); should a generation still end early, it is timed over the tokens it
// made (tokens: the fewest).
//   llamacpp_e2e.ts <node-llama-cpp dir> <model.gguf> <threads> <input_len> <output_len> <iters> <vocab>
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [pkgDir, gguf, ...nums] = process.argv.slice(2);
const [threads, inputLen, outputLen, iters, vocab] = nums.map(Number);
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const nlc: any = await import(pathToFileURL(join(pkgDir, 'dist', 'index.js')).href);
const llama = await nlc.getLlama({ gpu: false, build: 'never', logLevel: 'error', progressLogs: false });
const model = await llama.loadModel({ modelPath: gguf });
const context = await model.createContext({ contextSize: 2048, batchSize: 512, threads, sequences: 1 });
const sequence = context.getSequence();
const prompt = Array.from({ length: inputLen }, (_, i) => 3 + ((i * 7919) % (vocab - 3)));

async function once(): Promise<{ ttft: number; tpot: number; n: number }> {
  await sequence.clearHistory();
  const t0 = performance.now();
  let first = 0;
  let n = 0;
  for await (const _token of sequence.evaluate(prompt, { temperature: 0, yieldEogToken: true })) {
    if (n === 0) first = performance.now();
    if (++n === outputLen) break;
  }
  const end = performance.now();
  return { ttft: first - t0, tpot: (end - first) / Math.max(1, n - 1), n };
}

await once();  // warm-up
const runs = [];
for (let i = 0; i < iters; i++) runs.push(await once());
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
console.log(JSON.stringify({ ttft_ms: mean(runs.map((r) => r.ttft)), tpot_ms: mean(runs.map((r) => r.tpot)), tokens: Math.min(...runs.map((r) => r.n)) }));
await context.dispose();
await model.dispose();
await llama.dispose();
