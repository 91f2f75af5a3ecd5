// Which device an engine runs on, and why, in words a user can act on
// ("--device auto: no CUDA library at build/libvllm_cuda.so (npm run build:cuda)").
import type { EngineArgs } from '../config/engine_args.js';
import { isAvailable, libraryPath, loadNative } from '../native/index.js';
import type { Device } from '../native/index.js';

export interface DeviceChoice {
  device: Device;
  reason: string;
}

/** 'auto' picks cuda when its library is built and a GPU answers, else the CPU. */
export function chooseDevice(arg: EngineArgs['device']): DeviceChoice {
  if (arg === 'cpu' || arg === 'cuda') return { device: arg, reason: `--device ${arg}` };
  const lib = libraryPath('cuda');
  if (!isAvailable('cuda')) return { device: 'cpu', reason: `--device auto: no CUDA library at ${lib} (npm run build:cuda builds it)` };
  let count = 0;
  try {
    count = loadNative('cuda').deviceCount();
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    return { device: 'cpu', reason: `--device auto: ${lib} is built but the CUDA driver did not load (${msg})` };
  }
  if (count <= 0) return { device: 'cpu', reason: `--device auto: ${lib} is built but no CUDA device is visible` };
  return { device: 'cuda', reason: `--device auto: ${count} CUDA device${count > 1 ? 's' : ''} visible and ${lib} built` };
}
