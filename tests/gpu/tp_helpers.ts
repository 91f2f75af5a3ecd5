// Shared by the tensor-parallel GPU tests: why they skip (no GPU, fewer than two,
// no libnccl), and the CUDA device of each rank (as src/executor/ picks it).
import { loadNccl } from '../../src/distributed/nccl.js';
import { loadNative } from '../../src/native/index.js';
import { gpuSkipReason } from './helpers.js';

/** A reason to skip a test that needs `n` GPUs and NCCL, or false. */
export function multiGpuSkipReason(n = 2): string | false {
  const base = gpuSkipReason();
  if (base) return base;
  const ops = loadNative('cuda');
  const count = ops.deviceCount();
  if (count < n) return `tensor parallelism needs ${n} GPUs; ${count} visible`;
  try {
    loadNccl(ops);
  } catch (e) {
    return (e as Error).message;
  }
  return false;
}

/** CUDA_VISIBLE_DEVICES for rank r: the r-th device this process sees. */
export function rankDevice(r: number): string {
  const visible = process.env.CUDA_VISIBLE_DEVICES?.split(',').map((d) => d.trim()).filter((d) => d !== '');
  return visible?.[r] ?? String(r);
}
