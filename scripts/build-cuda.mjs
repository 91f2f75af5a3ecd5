// Builds the CUDA library build/libvllm_cuda.so from csrc/cuda/*.cu with nvcc
// (`npm run build:cuda`; never part of `npm install`). Machine code for sm_80
// (Ampere) and sm_90a (Hopper); one object per source, two compile jobs at a
// time; nothing is rebuilt when the library is newer than every source, header
// and this script. cuBLASLt is loaded at run time (dlopen), so only nvcc and
// cudart are needed to build. NVCC=/path/nvcc or CUDA_HOME pick the compiler;
// VLLM_TS_CUDA_ARCHS="80 90a" overrides the targets; VLLM_TS_CUDA_JOBS the jobs.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const srcDir = join(root, 'csrc', 'cuda');
const buildDir = join(root, 'build');
const objDir = join(buildDir, 'cuda-obj');
const lib = join(buildDir, 'libvllm_cuda.so');

function findNvcc() {
  if (process.env.NVCC) return process.env.NVCC;
  const homes = [process.env.CUDA_HOME, process.env.CUDA_PATH, '/usr/local/cuda'].filter(Boolean);
  for (const h of homes) if (existsSync(join(h, 'bin', 'nvcc'))) return join(h, 'bin', 'nvcc');
  return 'nvcc';
}

function fail(msg) {
  console.error(`vllm-ts: CUDA build failed: ${msg}`);
  process.exit(1);
}

const nvcc = findNvcc();
const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);
const names = readdirSync(srcDir);
const sources = names.filter((n) => n.endsWith('.cu')).sort();
const shared = readdirSync(join(root, 'csrc')).filter((n) => n.endsWith('.h')).map((n) => join(root, 'csrc', n));
const headers = [...shared, ...names.filter((n) => /\.(cuh|h)$/.test(n)).map((n) => join(srcDir, n))];
const newestInput = Math.max(...headers.map(mtime), mtime(fileURLToPath(import.meta.url)));
if (sources.length === 0) fail(`no CUDA sources in ${srcDir}`);
if (mtime(lib) > Math.max(newestInput, ...sources.map((s) => mtime(join(srcDir, s))))) {
  console.log(`vllm-ts: ${lib} is up to date`);
  process.exit(0);
}

const probe = spawnSync(nvcc, ['--version'], { encoding: 'utf8' });
if (probe.error || probe.status !== 0) {
  fail(`'${nvcc}' was not found: the CUDA kernels need the CUDA toolkit's nvcc (12.x or 13.x; set NVCC or CUDA_HOME), then run \`npm run build:cuda\`. The CPU library (npm run build:native) does not need it.`);
}

const archs = (process.env.VLLM_TS_CUDA_ARCHS ?? '80 90a').split(/[\s,]+/).filter(Boolean);
const gencode = archs.map((a) => `-gencode=arch=compute_${a},code=sm_${a}`);
const flags = ['-O3', '-std=c++17', '-lineinfo', ...gencode, '-Xcompiler', '-fPIC', '-Xcompiler', '-Wall', '-I', join(root, 'csrc')];

mkdirSync(objDir, { recursive: true });
const jobs = sources.map((s) => ({ src: join(srcDir, s), obj: join(objDir, s.replace(/\.cu$/, '.o')) }));
const stale = jobs.filter((j) => mtime(j.obj) <= Math.max(mtime(j.src), newestInput));

function compile(job) {
  return new Promise((ok, ko) => {
    const t0 = Date.now();
    const p = spawn(nvcc, [...flags, '-c', job.src, '-o', job.obj], { stdio: ['ignore', 'inherit', 'inherit'] });
    p.on('error', ko);
    p.on('close', (code) => {
      if (code !== 0) return ko(new Error(`compiling ${job.src} failed (exit ${code})`));
      console.log(`vllm-ts:   ${job.src.slice(root.length + 1)} ${((Date.now() - t0) / 1000).toFixed(1)}s`);
      ok();
    });
  });
}

async function main() {
  const start = Date.now();
  const queue = [...stale];
  const worker = async () => {
    for (let j = queue.shift(); j; j = queue.shift()) await compile(j);
  };
  const n = Math.max(1, Number(process.env.VLLM_TS_CUDA_JOBS ?? 2));
  await Promise.all(Array.from({ length: n }, worker));
  const link = spawnSync(nvcc, [...gencode, '-shared', '-o', lib, ...jobs.map((j) => j.obj), '-ldl'], { stdio: 'inherit' });
  if (link.status !== 0) throw new Error(`linking ${lib} failed`);
  const secs = ((Date.now() - start) / 1000).toFixed(1);
  console.log(`vllm-ts: built ${lib} (${stale.length}/${jobs.length} files, ${archs.map((a) => `sm_${a}`).join(' ')}, ${secs}s)`);
}

main().catch((e) => fail(e.message));
