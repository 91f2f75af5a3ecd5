// Workspace: a bump allocator for one forward step's intermediate tensors.
// NOTE: allocating per op is cheap on the CPU but not on a GPU (cudaMalloc
// synchronizes), and CUDA graphs need the same addresses every replay; so a step
// takes its scratch tensors from one arena and resets it at the end. The arena
// grows by chaining chunks and is consolidated into one chunk on reset.
import { type Addr, DType, DTYPE_BYTES, type NativeOps } from './library.js';
import { Tensor } from './tensor.js';

const ALIGN = 256;

export class Workspace {
  private chunks: { addr: Addr; bytes: number }[] = [];
  private used = 0; // bytes used in the last chunk
  private total = 0; // bytes handed out since reset
  private peak = 0;
  private frozen = false;

  constructor(readonly ops: NativeOps, initialBytes = 1 << 20) {
    this.addChunk(initialBytes);
  }

  private addChunk(bytes: number): void {
    if (this.frozen) throw new Error(`workspace needs ${bytes} more bytes after CUDA graph capture froze it (the profiling pass should have covered every step)`);
    const addr = this.ops.malloc(bytes);
    if (!addr) throw new Error(`out of ${this.ops.device} memory: workspace chunk of ${bytes} bytes (${this.ops.lastError()})`);
    this.chunks.push({ addr, bytes });
    this.used = 0;
  }

  alloc(shape: readonly number[], dtype: DType): Tensor {
    const bytes = Math.ceil((shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype]) / ALIGN) * ALIGN || ALIGN;
    let chunk = this.chunks[this.chunks.length - 1];
    if (this.used + bytes > chunk.bytes) {
      if (this.frozen) {
        throw new Error(`workspace frozen after CUDA graph capture cannot hold [${shape}] ${DType[dtype]} (${bytes} bytes): ` +
          `${this.used} of ${chunk.bytes} used (${this.total} live, peak ${this.peak}, ${this.chunks.length} chunks)`);
      }
      this.addChunk(Math.max(bytes, chunk.bytes * 2));
      chunk = this.chunks[this.chunks.length - 1];
    }
    const addr = chunk.addr + this.used;
    this.used += bytes;
    this.total += bytes;
    this.peak = Math.max(this.peak, this.total);
    return Tensor.wrap(this.ops, addr, shape, dtype);
  }

  /** Frees everything handed out; with several chunks, replaces them by one of the peak size. */
  reset(): void {
    if (this.chunks.length > 1) {
      this.ops.synchronize();
      for (const c of this.chunks) this.ops.free(c.addr);
      this.chunks = [];
      // Headroom: steps differ from the profiled one in their small tensors
      // (packed inputs, block tables, sampler parameters).
      this.addChunk(this.peak + Math.max(64 << 20, Math.ceil(this.peak / 16)));
    }
    this.used = 0;
    this.total = 0;
  }

  /** No more growth: captured graphs hold addresses inside the current chunk. */
  freeze(): void {
    this.frozen = true;
  }

  /** The allocation state, to hand out the same addresses again (CUDA graph replay). */
  mark(): { chunks: number; used: number; total: number } {
    return { chunks: this.chunks.length, used: this.used, total: this.total };
  }

  /**
   * Releases everything allocated since mark(). If a chunk was added meanwhile,
   * allocation restarts at the start of that newest chunk (what lies past the mark
   * in older chunks stays unused until reset()).
   */
  restore(m: { chunks: number; used: number; total: number }): void {
    this.used = m.chunks === this.chunks.length ? m.used : 0;
    this.total = m.total;
  }

  get peakBytes(): number {
    return this.peak;
  }

  dispose(): void {
    this.ops.synchronize();
    for (const c of this.chunks) this.ops.free(c.addr);
    this.chunks = [];
  }
}
