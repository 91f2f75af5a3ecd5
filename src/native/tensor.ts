// Tensor: a small handle on native memory (device, dtype, shape, address, owner).
// No autograd, no broadcasting: the models call ops in ../native on these.
import { type Addr, type Device, DType, DTYPE_BYTES, type NativeOps, check } from './library.js';
import { bf16ToF32, f16ToF32 } from './dtype.js';

/** One native allocation; views share it. */
class Allocation {
  constructor(readonly ops: NativeOps, public addr: Addr) {}
  release(): void {
    if (this.addr !== 0) {
      this.ops.free(this.addr);
      this.addr = 0;
    }
  }
}

export class Tensor {
  private constructor(
    readonly ops: NativeOps,
    readonly dtype: DType,
    readonly shape: readonly number[],
    readonly addr: Addr,
    private readonly owner: Allocation,
  ) {}

  get device(): Device {
    return this.ops.device;
  }
  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
  get nbytes(): number {
    return this.numel * DTYPE_BYTES[this.dtype];
  }
  get disposed(): boolean {
    return this.owner.addr === 0;
  }

  /** Uninitialized memory of a shape. */
  static empty(ops: NativeOps, shape: readonly number[], dtype: DType): Tensor {
    const bytes = Math.max(1, shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype]);
    const addr = ops.malloc(bytes);
    if (!addr) throw new Error(`out of ${ops.device} memory allocating ${bytes} bytes for [${shape}]: ${ops.lastError()}`);
    return new Tensor(ops, dtype, [...shape], addr, new Allocation(ops, addr));
  }

  /** A non-owning tensor over memory someone else manages (a workspace, a KV cache). */
  static wrap(ops: NativeOps, addr: Addr, shape: readonly number[], dtype: DType): Tensor {
    return new Tensor(ops, dtype, [...shape], addr, new Allocation(ops, 0));
  }

  static zeros(ops: NativeOps, shape: readonly number[], dtype: DType): Tensor {
    const t = Tensor.empty(ops, shape, dtype);
    check(ops, ops.memset(t.addr, 0, t.nbytes), 'memset');
    return t;
  }

  /** Copies host data (already in `dtype`'s bit layout) into a new tensor. */
  static fromHost(ops: NativeOps, data: ArrayBufferView, shape: readonly number[], dtype: DType): Tensor {
    const t = Tensor.empty(ops, shape, dtype);
    if (data.byteLength !== t.nbytes) {
      t.dispose();
      throw new Error(`fromHost: ${data.byteLength} bytes given for [${shape}] ${DType[dtype]} (${t.nbytes} needed)`);
    }
    t.copyFromHost(data);
    return t;
  }

  static fromF32(ops: NativeOps, data: Float32Array, shape: readonly number[]): Tensor {
    return Tensor.fromHost(ops, data, shape, DType.F32);
  }

  static fromI32(ops: NativeOps, data: Int32Array, shape: readonly number[]): Tensor {
    return Tensor.fromHost(ops, data, shape, DType.I32);
  }

  copyFromHost(data: ArrayBufferView, byteOffset = 0): void {
    check(this.ops, this.ops.copyH2D(this.addr + byteOffset, data, data.byteLength), 'copy to device');
  }

  /** Raw bytes back to the host. */
  toBytes(): Uint8Array {
    const out = new Uint8Array(this.nbytes);
    check(this.ops, this.ops.copyD2H(out, this.addr, this.nbytes), 'copy to host');
    return out;
  }

  /** Values as f32 on the host, whatever the storage dtype. */
  toF32(): Float32Array {
    const b = this.toBytes();
    switch (this.dtype) {
      case DType.F32:
        return new Float32Array(b.buffer, b.byteOffset, this.numel);
      case DType.BF16:
        return bf16ToF32(new Uint16Array(b.buffer, b.byteOffset, this.numel));
      case DType.F16:
        return f16ToF32(new Uint16Array(b.buffer, b.byteOffset, this.numel));
      default:
        throw new Error(`toF32 of ${DType[this.dtype]} tensor`);
    }
  }

  toI32(): Int32Array {
    if (this.dtype !== DType.I32) throw new Error(`toI32 of ${DType[this.dtype]} tensor`);
    const b = this.toBytes();
    return new Int32Array(b.buffer, b.byteOffset, this.numel);
  }

  /** A view of `shape` starting `offset` elements in; shares memory, never owns it. */
  view(shape: readonly number[], offset = 0): Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    if (offset + n > this.numel) throw new Error(`view [${shape}] at ${offset} overruns [${this.shape}]`);
    return new Tensor(this.ops, this.dtype, [...shape], this.addr + offset * DTYPE_BYTES[this.dtype], this.owner);
  }

  reshape(shape: readonly number[]): Tensor {
    return this.view(shape, 0);
  }

  /** Frees the allocation (all views of it become invalid). */
  dispose(): void {
    this.owner.release();
  }
}
