// The in-process communicator: the ranks of a tensor-parallel group are threads of
// one process (the CPU executor's worker threads), and a collective is a real
// exchange through one growable SharedArrayBuffer: each rank writes its tensor into
// its own slot, waits at a barrier (Atomics.wait), reads every slot in rank order
// and waits again before the slots are reused. Every rank sums in the same order,
// so all ranks hold bit-identical results (their samplers then agree). A rank that
// fails marks the group aborted, which wakes and fails every other rank's barrier
// instead of leaving it waiting. Used by the CPU tests; CUDA ranks use nccl.ts.
import { DType, DTYPE_BYTES, hostView, type Tensor } from '../native/index.js';
import type { Communicator } from './communicator.js';

// Header words (Int32): barrier arrivals, barrier generation, aborted (failed rank + 1).
const COUNT = 0;
const GEN = 1;
const ABORT = 2;
const MESSAGE_AT = 64; // the failure's message (UTF-8, up to MESSAGE_BYTES)
const MESSAGE_BYTES = 1024;
const DATA_AT = MESSAGE_AT + MESSAGE_BYTES;
const MAX_BYTES = 2 ** 32; // address space reserved for growth, not memory (V8 allows up to 4 GiB)

/** ES2024's growable SharedArrayBuffer (Node 20 has it; the project's TypeScript lib predates it). */
interface GrowableSab extends SharedArrayBuffer {
  grow(bytes: number): void;
}
const GrowableSharedArrayBuffer = SharedArrayBuffer as unknown as new (bytes: number, opts: { maxByteLength: number }) => GrowableSab;

/** What each rank's thread receives (structured-cloneable: the buffer is shared). */
export interface InProcessGroupHandle {
  readonly worldSize: number;
  readonly buffer: SharedArrayBuffer;
}

/** A new group's shared state; hand it to every rank's thread. */
export function createInProcessGroup(worldSize: number): InProcessGroupHandle {
  if (!Number.isInteger(worldSize) || worldSize < 1) throw new Error(`world size must be a positive integer, got ${worldSize}`);
  return { worldSize, buffer: new GrowableSharedArrayBuffer(DATA_AT, { maxByteLength: MAX_BYTES }) };
}

/** Marks the group failed (from any thread, e.g. the executor seeing a rank die): every barrier throws. */
export function abortInProcessGroup(g: InProcessGroupHandle, rank: number, message: string): void {
  const h = new Int32Array(g.buffer, 0, 16);
  if (Atomics.compareExchange(h, ABORT, 0, rank + 1) === 0) {
    const bytes = new TextEncoder().encode(message).subarray(0, MESSAGE_BYTES - 4);
    new DataView(g.buffer).setUint32(MESSAGE_AT, bytes.length, true);
    new Uint8Array(g.buffer, MESSAGE_AT + 4, bytes.length).set(bytes);
  }
  Atomics.add(h, GEN, 1);
  Atomics.notify(h, GEN);
}

export class InProcessCommunicator implements Communicator {
  readonly worldSize: number;
  private readonly header: Int32Array;

  constructor(private readonly group: InProcessGroupHandle, readonly rank: number) {
    this.worldSize = group.worldSize;
    if (!(rank >= 0 && rank < this.worldSize)) throw new Error(`rank ${rank} is outside a group of ${this.worldSize}`);
    this.header = new Int32Array(group.buffer, 0, 16);
  }

  allReduce(x: Tensor): void {
    const n = x.numel;
    const slots = this.exchange(x);
    const acc = elems(x.dtype, hostView(x.ops, x.addr, x.nbytes), 0, n);
    acc.set(elems(x.dtype, this.group.buffer, slots, n));
    for (let r = 1; r < this.worldSize; r++) {
      const s = elems(x.dtype, this.group.buffer, slots + r * this.slotBytes(x.nbytes), n);
      for (let i = 0; i < n; i++) acc[i] += s[i];
    }
    this.barrier();
  }

  allGather(x: Tensor, out: Tensor): void {
    if (out.numel !== x.numel * this.worldSize || out.dtype !== x.dtype) {
      throw new Error(`allGather: out [${out.shape}] must hold ${this.worldSize} x [${x.shape}] of the same dtype`);
    }
    const slots = this.exchange(x);
    const dst = new Uint8Array(hostView(out.ops, out.addr, out.nbytes));
    const stride = this.slotBytes(x.nbytes);
    for (let r = 0; r < this.worldSize; r++) dst.set(new Uint8Array(this.group.buffer, slots + r * stride, x.nbytes), r * x.nbytes);
    this.barrier();
  }

  allGatherNumbers(value: number): number[] {
    this.ensure(DATA_AT + this.worldSize * 8);
    const v = new Float64Array(this.group.buffer, DATA_AT, this.worldSize);
    v[this.rank] = value;
    this.barrier();
    const all = Array.from(v);
    this.barrier();
    return all;
  }

  close(): void {}

  /** Writes x into this rank's slot and waits for every rank's; returns where slot 0 starts. */
  private exchange(x: Tensor): number {
    if (x.device !== 'cpu') throw new Error('the in-process communicator moves CPU tensors (CUDA ranks use NCCL)');
    const stride = this.slotBytes(x.nbytes);
    this.ensure(DATA_AT + this.worldSize * stride);
    new Uint8Array(this.group.buffer, DATA_AT + this.rank * stride, x.nbytes).set(new Uint8Array(hostView(x.ops, x.addr, x.nbytes)));
    this.barrier();
    return DATA_AT;
  }

  private slotBytes(bytes: number): number {
    return Math.ceil(bytes / 8) * 8;
  }

  /** Grows the shared buffer to `bytes` (any rank may; a rank that finds it grown already goes on). */
  private ensure(bytes: number): void {
    const buf = this.group.buffer as GrowableSab;
    while (buf.byteLength < bytes) {
      try {
        buf.grow(bytes);
      } catch (e) {
        if (buf.byteLength < bytes) throw e;
      }
    }
  }

  private barrier(): void {
    const h = this.header;
    const gen = Atomics.load(h, GEN);
    this.throwIfAborted();
    if (Atomics.add(h, COUNT, 1) === this.worldSize - 1) {
      Atomics.store(h, COUNT, 0);
      Atomics.add(h, GEN, 1);
      Atomics.notify(h, GEN);
    } else {
      while (Atomics.load(h, GEN) === gen) Atomics.wait(h, GEN, gen, 1000);
    }
    this.throwIfAborted();
  }

  private throwIfAborted(): void {
    const failed = Atomics.load(this.header, ABORT);
    if (failed === 0) return;
    const dv = new DataView(this.group.buffer);
    const len = dv.getUint32(MESSAGE_AT, true);
    const msg = new TextDecoder().decode(new Uint8Array(this.group.buffer, MESSAGE_AT + 4, len).slice());
    throw new Error(`tensor-parallel rank ${failed - 1} failed: ${msg}`);
  }
}

/** n elements of dtype at byte `offset` of buf, as numbers (f32 and i32: the CPU's activations and ids). */
function elems(dtype: DType, buf: ArrayBufferLike, offset: number, n: number): Float32Array | Int32Array {
  if (dtype === DType.F32) return new Float32Array(buf, offset, n);
  if (dtype === DType.I32) return new Int32Array(buf, offset, n);
  throw new Error(`the in-process communicator sums f32 or int32 tensors, not ${DType[dtype]} (${DTYPE_BYTES[dtype]} bytes)`);
}
