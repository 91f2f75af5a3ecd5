export { type Addr, type Device, DType, DTYPE_BYTES, type NativeOps, check, hostView, isAvailable, libraryPath, loadNative, nativeDir } from './library.js';
export { Tensor } from './tensor.js';
export { Workspace } from './workspace.js';
export { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './dtype.js';
