// vllm-ts against llama.cpp on the CPU, side by side (issue 20). One command from a
// fresh clone (after `npm ci`):
//   npx tsx benchmarks/cpu_vs_llamacpp/run.ts [--rounds 5] [--threads 1,2] [--models tiny,110m]
//       [--prompt-len 512] [--decode 256] [--e2e-iters 3] [--no-e2e] [--json out.json]
// 1. Installs llama.cpp as node-llama-cpp ships it (pinned, its prebuilt linux-x64 CPU
//    binary only: the optional CUDA / Vulkan packages are omitted) into a scratch folder
//    ($VLLM_TS_BENCH_CACHE, default ~/.cache/vllm-ts-bench), never into this package,
//    and builds llama_bench.cpp against that release's llama.h.
// 2. Writes the models once there: llama-110m's random bf16 weights (random_weights.ts,
//    fixed seed) and a bf16 GGUF of each checkpoint (gguf.ts) from the same safetensors.
// 3. Checks greedy outputs: both engines against HF's (tests/fixtures/tiny-llama-kjv)
//    up to HF's first unclear margin, and against each other on llama-110m.
// 4. Measures prefill (one 512-token prompt) and batch-1 decode (256 steps after it)
//    with each engine in its own process, the two engines alternated within every
//    round (order flipped each round) so that the machine's noise hits both; medians
//    over the rounds, and the median of the per-round ratios.
// 5. End to end, batch 1: `vllm-ts bench latency` beside node-llama-cpp's own
//    generation loop, alternated the same way.
// Prints the tables in Markdown (for docs/benchmarks.md), each row with the 1-minute
// load average over its rounds. Check `uptime` before a run: on a shared 2-vCPU machine
// a third busy process makes the two-thread rows meaningless (llama.cpp's threads
// spin at a barrier after every op, so one descheduled thread stalls its whole step).
// VLLM_TS_ENFORCE_EAGER=1 runs vllm-ts's side without graphs.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, homedir, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WeightSource } from '../../src/model_executor/model_loader/safetensors.js';
import { loadCompactReference } from '../../tests/helpers/compact_reference.js';
import { convertToGguf } from './gguf.js';
import { writeRandomLlama } from './random_weights.js';

const NODE_LLAMA_CPP_VERSION = '3.22.1';
const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../..');
const CACHE = process.env.VLLM_TS_BENCH_CACHE ?? join(homedir(), '.cache', 'vllm-ts-bench');
const UNCLEAR_MARGIN = 0.1;  // HF top-2 logit gap below which greedy may flip on rounding

const args = process.argv.slice(2);
const flag = (name: string, def: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : def);
const ROUNDS = Number(flag('--rounds', '5'));
const THREADS = flag('--threads', '1,2').split(',').map(Number);
const MODEL_KEYS = flag('--models', 'tiny,110m').split(',');
const PROMPT_LEN = Number(flag('--prompt-len', '512'));
const DECODE = Number(flag('--decode', '256'));
const E2E_ITERS = Number(flag('--e2e-iters', '3'));
const E2E = !args.includes('--no-e2e');
const JSON_OUT = flag('--json', '');

function run(cmd: string, argv: string[], opts: { cwd?: string } = {}): string {
  const r = spawnSync(cmd, argv, { cwd: opts.cwd ?? ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}
const tsx = (script: string, argv: (string | number)[]) => run(process.execPath, ['--import', 'tsx', join(HERE, script), ...argv.map(String)]);
const lastJson = (out: string) => JSON.parse(out.trim().split('\n').filter((l) => l.startsWith('{')).pop()!);
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

interface LlamaCpp { bins: string; shim: string; pkgDir: string }

/** node-llama-cpp and its prebuilt CPU binary in the scratch folder; llama_bench built against it. */
function ensureLlamaCpp(): LlamaCpp {
  const dir = join(CACHE, `node-llama-cpp-${NODE_LLAMA_CPP_VERSION}`);
  const pkgDir = join(dir, 'node_modules', 'node-llama-cpp');
  const bins = join(dir, 'node_modules', '@node-llama-cpp', 'linux-x64', 'bins', 'linux-x64');
  if (!existsSync(join(bins, 'libllama.v0.5.0.so')) || !existsSync(join(pkgDir, 'package.json'))) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({
      name: 'vllm-ts-bench-llamacpp', private: true, type: 'module',
      dependencies: { 'node-llama-cpp': NODE_LLAMA_CPP_VERSION, '@node-llama-cpp/linux-x64': NODE_LLAMA_CPP_VERSION },
    }, null, 2));
    console.error(`installing node-llama-cpp ${NODE_LLAMA_CPP_VERSION} (CPU binary only) into ${dir}`);
    // --omit=optional: none of the ~600 MB of CUDA / Vulkan packages; --ignore-scripts:
    // its postinstall would look for (or build) other binaries.
    run('npm', ['install', '--omit=optional', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir });
  }
  const headers = join(dir, 'llama-src');
  if (!existsSync(join(headers, 'include', 'llama.h'))) {
    // The release's sources ship in the package as a git bundle: check out only the headers.
    rmSync(headers, { recursive: true, force: true });
    run('git', ['clone', '-q', '--no-checkout', join(pkgDir, 'llama', 'gitRelease.bundle'), headers]);
    run('git', ['-C', headers, 'checkout', '-q', 'HEAD', '--', 'include', 'ggml/include']);
  }
  const src = join(HERE, 'llama_bench.cpp');
  const hash = createHash('sha256').update(readFileSync(src)).digest('hex').slice(0, 12);
  const shim = join(dir, 'build', `llama_bench-${hash}`);
  if (!existsSync(shim)) {
    mkdirSync(dirname(shim), { recursive: true });
    run('g++', ['-O2', '-std=c++17', '-I', join(headers, 'include'), '-I', join(headers, 'ggml', 'include'), '-o', shim, src,
      join(bins, 'libllama.v0.5.0.so'), join(bins, 'libggml.v0.5.0.so'), join(bins, 'libggml-base.so'), `-Wl,-rpath,${bins}`]);
  }
  return { bins, shim, pkgDir };
}

interface Model { key: string; name: string; dir: string; tokenizer: string; gguf: string; vocab: number; weightBytes: number; kvBytes: number }

/** Weight bytes one decode step reads (everything but the embedding table; a tied lm_head counts once). */
function decodeBytes(dir: string): number {
  const w = WeightSource.open(dir);
  const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  let n = 0;
  for (const name of w.names()) if (name !== 'model.embed_tokens.weight' || c.tie_word_embeddings) n += w.info(name).nbytes;
  w.close();
  return n;
}

/**
 * KV-cache bytes one decode step reads in vllm-ts's f32 cache (keys and values of every
 * layer at the mean context of the timed steps: the prompt, 8 warm-up steps, then DECODE).
 */
function kvBytes(dir: string): number {
  const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const headDim = c.head_dim ?? c.hidden_size / c.num_attention_heads;
  const meanContext = PROMPT_LEN + 8 + (DECODE + 1) / 2;
  return c.num_hidden_layers * 2 * (c.num_key_value_heads ?? c.num_attention_heads) * headDim * 4 * meanContext;
}

function ensureModels(): Model[] {
  mkdirSync(join(CACHE, 'models'), { recursive: true });
  const models: Model[] = [];
  for (const key of MODEL_KEYS) {
    let m: Omit<Model, 'vocab' | 'weightBytes' | 'kvBytes'>;
    if (key === 'tiny') {
      m = { key, name: 'tiny-llama-kjv', dir: join(ROOT, 'models/tiny-llama-kjv'), tokenizer: join(ROOT, 'models/tiny-llama-kjv'), gguf: join(CACHE, 'models', 'tiny-llama-kjv-bf16.gguf') };
    } else if (key === '110m') {
      const dir = join(CACHE, 'models', 'llama-110m-random-seed20');
      if (!existsSync(join(dir, 'model.safetensors'))) writeRandomLlama(join(ROOT, 'benchmarks/configs/llama-110m'), dir, 20);
      m = { key, name: 'llama-110m (random bf16)', dir, tokenizer: join(ROOT, 'models/tiny-llama-kjv'), gguf: join(CACHE, 'models', 'llama-110m-random-seed20-bf16.gguf') };
    } else throw new Error(`--models: unknown ${key} (tiny, 110m)`);
    // The GGUF's name carries the converter's hash, so a changed converter rewrites it.
    const h = createHash('sha256').update(readFileSync(join(HERE, 'gguf.ts'))).digest('hex').slice(0, 8);
    m.gguf = m.gguf.replace(/\.gguf$/, `-${h}.gguf`);
    if (!existsSync(m.gguf)) convertToGguf(m.dir, m.gguf, m.tokenizer);
    const vocab = JSON.parse(readFileSync(join(m.dir, 'config.json'), 'utf8')).vocab_size as number;
    models.push({ ...m, vocab, weightBytes: decodeBytes(m.dir), kvBytes: kvBytes(m.dir) });
  }
  return models;
}

const llamaGreedy = (l: LlamaCpp, m: Model, ids: number[], n: number): number[] =>
  lastJson(run(l.shim, ['greedy', m.gguf, '2', String(n), l.bins, ...ids.map(String)])).ids;
const vllmGreedy = (m: Model, ids: number[], n: number): number[] =>
  lastJson(tsx('vllm_side.ts', ['greedy', m.dir, 2, n, ...ids])).ids;
const samePrefix = (a: number[], b: number[]) => { let i = 0; while (i < a.length && i < b.length && a[i] === b[i]) i++; return i; };

/** Greedy of both engines against HF's up to its first margin under UNCLEAR_MARGIN, and against each other. */
function checkGreedy(l: LlamaCpp, models: Model[]): string[] {
  const lines: string[] = [];
  for (const m of models) {
    if (m.key === 'tiny') {
      // HF's reference in the compact fixture format: per position its top-k logits, best first.
      const { topK, cases } = loadCompactReference(join(ROOT, 'tests/fixtures/tiny-llama-kjv'));
      const counts = { llama: [0, 0], vllm: [0, 0] };
      for (const c of cases) {
        let clear = 0;  // HF's tokens before its first unclear margin
        for (; clear < c.generatedIds.length; clear++) {
          const t = c.promptIds.length - 1 + clear;
          if (c.topLogits[t * topK] - c.topLogits[t * topK + 1] < UNCLEAR_MARGIN) break;
        }
        const n = c.generatedIds.length;
        for (const [who, ids] of [['llama', llamaGreedy(l, m, c.promptIds, n)], ['vllm', vllmGreedy(m, c.promptIds, n)]] as const) {
          const same = samePrefix(ids, c.generatedIds);
          if (same < clear) throw new Error(`${who}: greedy differs from HF at token ${same} of "${c.promptIds}" (HF's margins are clear up to ${clear})`);
          counts[who][0] += same;
          counts[who][1] += n;
        }
      }
      lines.push(`${m.name}: greedy equal to HF's on ${counts.llama[0]}/${counts.llama[1]} tokens (llama.cpp) and ${counts.vllm[0]}/${counts.vllm[1]} (vllm-ts) over the fixture's ${cases.length} prompts; every token before HF's first top-2 margin under ${UNCLEAR_MARGIN} equal on both`);
    } else {
      const ids = [1, 400, 500, 600, 700, 800, 900];
      const a = llamaGreedy(l, m, ids, 32), b = vllmGreedy(m, ids, 32);
      lines.push(`${m.name}: llama.cpp and vllm-ts greedy equal on ${samePrefix(a, b)}/32 tokens (no HF reference for random weights)`);
    }
  }
  return lines;
}

interface Sample { prefill_ms: number; decode_ms: number }
const llamaBench = (l: LlamaCpp, m: Model, t: number): Sample =>
  lastJson(run(l.shim, ['bench', m.gguf, String(t), String(PROMPT_LEN), String(DECODE), '3', l.bins]));
const vllmBench = (m: Model, t: number): Sample => lastJson(tsx('vllm_side.ts', ['bench', m.dir, t, PROMPT_LEN, DECODE, 3]));

interface E2e { ttft_ms: number; tpot_ms: number; tokens?: number }
function vllmE2e(m: Model, t: number): E2e {
  const out = join(CACHE, 'bench_latency.json');
  run(process.execPath, ['--import', 'tsx', join(ROOT, 'src/entrypoints/cli/main.ts'), 'bench', 'latency', m.dir, '--tokenizer', m.tokenizer,
    '--input-len', String(PROMPT_LEN), '--output-len', String(DECODE), '--batch-size', '1', '--num-iters-warmup', '1',
    '--num-iters', String(E2E_ITERS), '--num-threads', String(t), '--device', 'cpu', '--no-enable-prefix-caching', '--output-json', out]);
  const r = JSON.parse(readFileSync(out, 'utf8'));
  return { ttft_ms: r.avg_ttft * 1000, tpot_ms: r.avg_tpot * 1000 };
}
const llamaE2e = (l: LlamaCpp, m: Model, t: number): E2e =>
  lastJson(tsx('llamacpp_e2e.ts', [l.pkgDir, m.gguf, t, PROMPT_LEN, DECODE, E2E_ITERS, m.vocab]));

/** Runs a(), b() alternately for `rounds` rounds, b first on odd rounds; the 1-minute load average after each round. */
function alternate<T>(rounds: number, a: () => T, b: () => T): { a: T[]; b: T[]; load: number[] } {
  const out = { a: [] as T[], b: [] as T[], load: [] as number[] };
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) { out.a.push(a()); out.b.push(b()); } else { out.b.push(b()); out.a.push(a()); }
    out.load.push(+loadavg()[0].toFixed(2));
  }
  return out;
}

function membw(models: Model[]): Map<string, number> {
  const bin = join(ROOT, 'build', 'membw');
  mkdirSync(dirname(bin), { recursive: true });
  run('g++', ['-O3', '-march=native', '-pthread', '-o', bin, join(ROOT, 'benchmarks/membw.cpp')]);
  const bw = new Map<string, number>();
  for (const m of models) {
    for (const line of run(bin, [String(Math.max(...THREADS)), String((m.weightBytes + m.kvBytes) / 2 ** 20)]).trim().split('\n')) {
      const [t, gbs] = line.split(' ').map(Number);
      bw.set(`${m.key}/${t}`, gbs);
    }
  }
  return bw;
}

const f0 = (x: number) => Math.round(x).toLocaleString('en-US');
const f2 = (x: number) => x.toFixed(2);
const range = (xs: number[]) => `${f2(Math.min(...xs))}–${f2(Math.max(...xs))}`;

function main(): void {
  const t0 = Date.now();
  const load0 = loadavg()[0];
  if (!existsSync(join(ROOT, 'build', 'libvllm_cpu.so'))) run('npm', ['run', 'build:native']);
  const l = ensureLlamaCpp();
  const models = ensureModels();
  const checks = checkGreedy(l, models);
  for (const c of checks) console.error(`check: ${c}`);
  const bw = membw(models);
  const rows: Record<string, unknown>[] = [];
  const table = [
    '| model | threads | llama.cpp prefill tok/s | vllm-ts prefill tok/s | prefill ratio (range) | llama.cpp decode tok/s | vllm-ts decode tok/s | decode ratio (range) | vllm-ts decode × floor (weights / weights + KV) | load |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const m of models) {
    for (const t of THREADS) {
      const s = alternate(ROUNDS, () => llamaBench(l, m, t), () => vllmBench(m, t));
      const pre = s.a.map((x, i) => x.prefill_ms / s.b[i].prefill_ms);  // > 1: vllm-ts faster
      const dec = s.a.map((x, i) => x.decode_ms / s.b[i].decode_ms);
      const lp = median(s.a.map((x) => x.prefill_ms)), vp = median(s.b.map((x) => x.prefill_ms));
      const ld = median(s.a.map((x) => x.decode_ms)), vd = median(s.b.map((x) => x.decode_ms));
      const gbs = bw.get(`${m.key}/${t}`)!;
      const floorMs = m.weightBytes / (gbs * 1e9) * 1000, kvFloorMs = (m.weightBytes + m.kvBytes) / (gbs * 1e9) * 1000;
      table.push(`| ${m.name} | ${t} | ${f0(PROMPT_LEN / lp * 1000)} | ${f0(PROMPT_LEN / vp * 1000)} | **${f2(median(pre))}** (${range(pre)}) | ${f0(1000 / ld)} | ${f0(1000 / vd)} | **${f2(median(dec))}** (${range(dec)}) | ${f2(vd / floorMs)} / ${f2(vd / kvFloorMs)} | ${range(s.load)} |`);
      rows.push({ model: m.name, threads: t, llamacpp: s.a, vllm: s.b, prefill_ratio: median(pre), decode_ratio: median(dec), load: s.load, read_gb_s: gbs, floor_ms: floorMs, floor_with_kv_ms: kvFloorMs });
      console.error(table[table.length - 1]);
    }
  }
  const e2e = ['| model | threads | node-llama-cpp TTFT ms / decode tok/s | `vllm-ts bench latency` TTFT ms / decode tok/s | decode ratio (range) | load |', '|---|---|---|---|---|---|'];
  if (E2E) {
    for (const m of models) {
      for (const t of THREADS) {
        const s = alternate(2, () => llamaE2e(l, m, t), () => vllmE2e(m, t));
        const dec = s.a.map((x, i) => x.tpot_ms / s.b[i].tpot_ms);
        const lt = median(s.a.map((x) => x.tpot_ms)), vt = median(s.b.map((x) => x.tpot_ms));
        const few = Math.min(...s.a.map((x) => x.tokens ?? DECODE));
        const note = few < DECODE ? ` (stopped at EOS after ${few} tokens)` : '';
        e2e.push(`| ${m.name} | ${t} | ${f0(median(s.a.map((x) => x.ttft_ms)))} / ${f0(1000 / lt)}${note} | ${f0(median(s.b.map((x) => x.ttft_ms)))} / ${f0(1000 / vt)} | **${f2(median(dec))}** (${range(dec)}) | ${range(s.load)} |`);
        rows.push({ model: m.name, threads: t, e2e_llamacpp: s.a, e2e_vllm: s.b, load: s.load });
        console.error(e2e[e2e.length - 1]);
      }
    }
  }
  const minutes = (Date.now() - t0) / 60000;
  const machine = `${cpus()[0]?.model}, ${cpus().length} vCPU, Node ${process.version}, load average ${load0.toFixed(1)} at the start and ${loadavg()[0].toFixed(1)} at the end`;
  const lines = [
    `\`npx tsx benchmarks/cpu_vs_llamacpp/run.ts ${args.join(' ')}\`: ${new Date().toISOString().slice(0, 16)}Z, ${machine}; ${ROUNDS} alternating rounds, ${minutes.toFixed(1)} min.`,
    `llama.cpp: libllama of node-llama-cpp ${NODE_LLAMA_CPP_VERSION}'s prebuilt linux-x64 CPU binary, bf16 GGUF of the same safetensors; vllm-ts: the ModelRunner (benchmarks/forward.ts's path).`,
    `Prefill: one ${PROMPT_LEN}-token prompt (fastest of 3 after a warm-up); decode: batch 1, ${DECODE} greedy steps after it. Ratio = vllm-ts tok/s / llama.cpp tok/s, median of the per-round ratios (above 1: vllm-ts faster). Floor = bytes a decode step reads / read bandwidth of a buffer that size (benchmarks/membw.cpp, same threads): the weights alone (embedding rows excluded), and the weights plus vllm-ts's f32 KV cache at the mean context.`,
    '',
    ...checks.map((c) => `- ${c}`),
    '',
    ...table,
  ];
  if (E2E) lines.push('', `End to end, batch 1, ${PROMPT_LEN} in / ${DECODE} out, prefix caching off, mean of ${E2E_ITERS} iterations after a warm-up, 2 alternating rounds:`, '', ...e2e);
  console.log(lines.join('\n'));
  if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify({ benchmark: 'cpu_vs_llamacpp', date: new Date().toISOString(), machine, command: `npx tsx benchmarks/cpu_vs_llamacpp/run.ts ${args.join(' ')}`, checks, results: rows }, null, 2) + '\n');
}

main();
