// Builds the CPU library build/libvllm_cpu.so from csrc/cpu/*.cpp with g++ alone
// (runs at `npm install` and `npm run build:native`). One object per source, two
// compile jobs at a time; nothing is rebuilt when the library is newer than every
// source and header (csrc/*.h included).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const srcDir = join(root, 'csrc', 'cpu');
const buildDir = join(root, 'build');
const objDir = join(buildDir, 'cpu-obj');
const lib = join(buildDir, 'libvllm_cpu.so');
const cxx = process.env.CXX || 'g++';

const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);
const names = readdirSync(srcDir);
const sources = names.filter((n) => n.endsWith('.cpp')).sort();
// csrc/*.h (ops.h and the math shared with the CUDA library) and csrc/cpu/*.h
const shared = readdirSync(join(root, 'csrc')).filter((n) => n.endsWith('.h'));
const headers = [...shared.map((n) => join(root, 'csrc', n)), ...names.filter((n) => n.endsWith('.h')).map((n) => join(srcDir, n))];
const newestHeader = Math.max(...headers.map(mtime));
const script = mtime(fileURLToPath(import.meta.url));

if (sources.length === 0) fail(`no C++ sources in ${srcDir}`);
const libTime = mtime(lib);
if (libTime > Math.max(newestHeader, script, ...sources.map((s) => mtime(join(srcDir, s))))) process.exit(0);

const probe = spawnSync(cxx, ['--version'], { encoding: 'utf8' });
if (probe.error || probe.status !== 0) {
  fail(`'${cxx}' was not found: the CPU kernels need a C++17 compiler (Debian/Ubuntu: \`apt-get install g++\`; or set CXX), then run \`npm run build:native\``);
}
// -march=native unless this compiler rejects it (then a portable scalar/SSE build).
const native = spawnSync(cxx, ['-march=native', '-x', 'c++', '-E', '-o', '/dev/null', '/dev/null']).status === 0;
const flags = ['-O3', ...(native ? ['-march=native'] : []), '-std=c++17', '-fPIC', '-pthread', '-Wall', '-Wno-unused-function', '-Wno-maybe-uninitialized'];

mkdirSync(objDir, { recursive: true });
const jobs = sources.map((s) => ({ src: join(srcDir, s), obj: join(objDir, s.replace(/\.cpp$/, '.o')) }));
const stale = jobs.filter((j) => mtime(j.obj) <= Math.max(mtime(j.src), newestHeader, script));

function compile(job) {
  return new Promise((ok, ko) => {
    const p = spawn(cxx, [...flags, '-I', join(root, 'csrc'), '-c', job.src, '-o', job.obj], { stdio: ['ignore', 'inherit', 'inherit'] });
    p.on('error', ko);
    p.on('close', (code) => (code === 0 ? ok() : ko(new Error(`compiling ${job.src} failed (exit ${code})`))));
  });
}

async function main() {
  const start = Date.now();
  const queue = [...stale];
  const worker = async () => {
    for (let j = queue.shift(); j; j = queue.shift()) await compile(j);
  };
  await Promise.all([worker(), worker()]);
  const link = spawnSync(cxx, [...flags, '-shared', '-o', lib, ...jobs.map((j) => j.obj)], { stdio: 'inherit' });
  if (link.status !== 0) throw new Error(`linking ${lib} failed`);
  const secs = ((Date.now() - start) / 1000).toFixed(1);
  console.log(`vllm-ts: built ${lib} (${stale.length}/${jobs.length} files, ${native ? '-march=native' : 'generic'}, ${secs}s)`);
}

function fail(msg) {
  console.error(`vllm-ts: native build failed: ${msg}`);
  process.exit(1);
}

main().catch((e) => fail(e.message));
