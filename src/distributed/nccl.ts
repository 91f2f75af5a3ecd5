// NCCL through the native seam (csrc/cuda/nccl.cu): where libnccl is (found here,
// loaded there with dlopen), the unique id rank 0 hands out, and the communicator
// whose collectives run on the CUDA library's stream (so decode CUDA graphs capture
// them). One communicator per process: each CUDA rank is its own process.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { check, DType, type NativeOps, Tensor } from '../native/index.js';
import type { Communicator } from './communicator.js';

const SONAME = 'libnccl.so.2';

/** Where a Python environment's nvidia-nccl-cu* wheel puts the library: <site-packages>/nvidia/nccl/lib. */
function pythonPackageDirs(env: NodeJS.ProcessEnv): string[] {
  const roots = [env.VIRTUAL_ENV, env.CONDA_PREFIX, '/usr/local', '/usr', '/opt/conda', join(homedir(), '.local')].filter((r): r is string => !!r);
  const out: string[] = [];
  for (const root of roots) {
    const lib = join(root, 'lib');
    let pythons: string[] = [];
    try {
      pythons = readdirSync(lib).filter((n) => /^python3(\.\d+)?$/.test(n));
    } catch {
      continue;
    }
    for (const py of pythons) for (const sp of ['site-packages', 'dist-packages']) out.push(join(lib, py, sp, 'nvidia', 'nccl', 'lib'));
  }
  return out;
}

/**
 * Where `python3` itself finds the nvidia.nccl package (a venv or prefix the fixed
 * folders above miss); null when there is no python3 or no such package.
 */
function pythonNcclDir(env: NodeJS.ProcessEnv): string | null {
  const code = 'import os, nvidia.nccl as m; print(os.path.join(list(m.__path__)[0], "lib"))';
  const r = spawnSync(env.PYTHON ?? 'python3', ['-c', code], { encoding: 'utf8', timeout: 10_000, env });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
}

/**
 * The libnccl candidates in the order they are tried: VLLM_TS_NCCL_PATH, vLLM's
 * VLLM_NCCL_SO_PATH (each alone when set: a named file is used or the start fails),
 * then the nvidia-nccl-cu* wheel's folder (the usual prefixes, else where python3
 * imports it from), the CUDA toolkit's lib64 and the distro's library folder, and
 * last the bare soname for the dynamic loader's own search (LD_LIBRARY_PATH, ldconfig).
 */
export function ncclCandidates(env: NodeJS.ProcessEnv = process.env): { named: boolean; paths: string[] } {
  for (const key of ['VLLM_TS_NCCL_PATH', 'VLLM_NCCL_SO_PATH']) {
    const v = env[key];
    if (v) return { named: true, paths: [v] };
  }
  const dirs = [...pythonPackageDirs(env), ...[env.CUDA_HOME, '/usr/local/cuda'].filter((d): d is string => !!d).map((d) => join(d, 'lib64')),
    '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu'];
  const files = dirs.map((d) => join(d, SONAME)).filter((p) => existsSync(p));
  if (files.length === 0) {
    const py = pythonNcclDir(env);
    if (py && existsSync(join(py, SONAME))) files.push(join(py, SONAME));
  }
  return { named: false, paths: [...files, SONAME] };
}

/**
 * Loads libnccl into the CUDA library; throws naming every place tried when none
 * loads. NVLink multicast is turned off first (NCCL_NVLS_ENABLE=0, in this process's
 * environment and so in every rank process it starts): on a shared host a program
 * using it can put all the GPUs out of service.
 */
export function loadNccl(ops: NativeOps, env: NodeJS.ProcessEnv = process.env): string {
  process.env.NCCL_NVLS_ENABLE = '0';
  const { named, paths } = ncclCandidates(env);
  const errors: string[] = [];
  for (const p of paths) {
    if (ops.ncclLoad(p) === 0) return p;
    errors.push(ops.lastError());
  }
  const how = named
    ? 'VLLM_TS_NCCL_PATH / VLLM_NCCL_SO_PATH names a file that is not a loadable libnccl'
    : `install NCCL (pip install nvidia-nccl-cu12, or the distro's libnccl2) or name ${SONAME} with VLLM_TS_NCCL_PATH`;
  throw new Error(`--tensor-parallel-size > 1 on CUDA needs NCCL, and it could not be loaded: ${how}. Tried: ${errors.join('; ')}`);
}

/** Rank 0's 128-byte ncclUniqueId (after loadNccl), hex-encoded for the other ranks' start-up. */
export function ncclUniqueId(ops: NativeOps): string {
  const id = new Uint8Array(128);
  check(ops, ops.ncclUniqueId(id), 'nccl_unique_id');
  return Buffer.from(id).toString('hex');
}

export class NcclCommunicator implements Communicator {
  /** Joins the group (blocks until every rank has called it; after loadNccl and the CUDA library's init). */
  constructor(private readonly ops: NativeOps, readonly rank: number, readonly worldSize: number, uniqueIdHex: string) {
    const id = Uint8Array.from(Buffer.from(uniqueIdHex, 'hex'));
    if (id.length !== 128) throw new Error(`an ncclUniqueId is 128 bytes, got ${id.length}`);
    check(ops, ops.ncclInit(worldSize, rank, id), 'nccl_init');
  }

  allReduce(x: Tensor): void {
    check(this.ops, this.ops.allReduce(x.addr, x.numel, x.dtype), 'all_reduce');
  }

  allGather(x: Tensor, out: Tensor): void {
    if (out.numel !== x.numel * this.worldSize || out.dtype !== x.dtype) {
      throw new Error(`allGather: out [${out.shape}] must hold ${this.worldSize} x [${x.shape}] of the same dtype`);
    }
    check(this.ops, this.ops.allGather(out.addr, x.addr, x.numel, x.dtype), 'all_gather');
  }

  allGatherNumbers(value: number): number[] {
    // Start-up only (not in a step): int32 through device memory.
    if (!Number.isInteger(value) || Math.abs(value) > 2 ** 31 - 1) throw new Error(`allGatherNumbers takes int32 values, got ${value}`);
    const x = Tensor.fromI32(this.ops, Int32Array.of(value), [1]);
    const out = Tensor.empty(this.ops, [this.worldSize], DType.I32);
    try {
      this.allGather(x, out);
      check(this.ops, this.ops.synchronize(), 'synchronize');
      return Array.from(out.toI32());
    } finally {
      x.dispose();
      out.dispose();
    }
  }

  close(): void {
    this.ops.ncclDestroy();
  }
}
