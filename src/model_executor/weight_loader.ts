// WeightLoader: turns named checkpoint tensors into device Tensors for the model
// constructors (checked against the shape the model expects, fused where the model
// packs several checkpoint tensors into one, or random for --load-format dummy).
import { check, DType, DTYPE_BYTES, Tensor } from '../native/index.js';
import type { NativeOps } from '../native/index.js';
import { NO_TENSOR_PARALLEL, type TensorParallel } from '../distributed/communicator.js';

/**
 * One shard of one checkpoint tensor (vLLM's weight_loader with a shard id): the
 * tensor `name` of full shape `shape` on disk, its sub-tensor `at` along dim 0 when
 * given (one expert of a stacked [E, ...] tensor), cut to [start, end) along `dim`.
 * With `transpose`, the 2-D piece is transposed after the cut (GPT-2's Conv1D).
 */
export interface ShardPiece {
  name: string;
  shape: readonly number[];
  at?: number;
  dim: number;
  start: number;
  end: number;
  transpose?: boolean;
}

/** What the loader needs from a checkpoint (safetensors folder or dummy source). */
export interface WeightSourceLike {
  readonly isDummy?: boolean;
  has(name: string): boolean;
  /** Throws, naming file and tensor, when missing or of another shape. */
  expect(name: string, shape: readonly number[]): { dtype: string };
  /** Raw little-endian bytes of a tensor. */
  read(name: string): Uint8Array;
}

export function dtypeFromSafetensors(dt: string): DType {
  switch (dt) {
    case 'F32':
      return DType.F32;
    case 'F16':
      return DType.F16;
    case 'BF16':
      return DType.BF16;
    default:
      throw new Error(`unsupported weight dtype ${dt} (supported: F32, F16, BF16)`);
  }
}

export class WeightLoader {
  private dummyCounter = 0;
  /** Every tensor handed out, so that the model's memory can be released at once. */
  readonly tensors: Tensor[] = [];
  loadedBytes = 0;

  constructor(
    readonly ops: NativeOps,
    readonly source: WeightSourceLike,
    /** Dtype weights are stored in on the device; null keeps the checkpoint's (the CPU path). */
    readonly targetDtype: DType | null,
    /** Dtype of dummy weights when targetDtype is null. */
    readonly dummyDtype: DType = DType.BF16,
    readonly seed = 0,
    /** This rank's place in its tensor-parallel group: the sharded layers (layers/parallel_*.ts) cut their weights by it. */
    readonly tp: TensorParallel = NO_TENSOR_PARALLEL,
  ) {}

  has(name: string): boolean {
    return this.source.isDummy ? true : this.source.has(name);
  }

  /** One tensor of the given shape. */
  get(name: string, shape: readonly number[]): Tensor {
    return this.concat([name], [shape]);
  }

  /** A tensor made by the model itself (e.g. a rotary table), released with the weights. */
  track(t: Tensor): Tensor {
    this.tensors.push(t);
    return t;
  }

  disposeAll(): void {
    for (const t of this.tensors) t.dispose();
    this.tensors.length = 0;
  }

  /**
   * A fused weight (see packedModules): `${fused}.${suffix}` when the checkpoint
   * holds it (Phi-3's qkv_proj), else the parts' `${part}.${suffix}` stacked along dim 0.
   * shapes: each part's shape; the fused tensor is their row-wise stack.
   */
  packed(fused: string, parts: readonly string[], shapes: readonly (readonly number[])[], suffix: string): Tensor {
    if (!this.source.isDummy && this.source.has(`${fused}.${suffix}`)) {
      const rows = shapes.reduce((a, s) => a + s[0], 0);
      return this.get(`${fused}.${suffix}`, [rows, ...shapes[0].slice(1)]);
    }
    return this.concat(parts.map((n) => `${n}.${suffix}`), shapes);
  }

  /** Several tensors stacked along dim 0 into one (e.g. q, k, v -> qkv). */
  concat(names: readonly string[], shapes: readonly (readonly number[])[]): Tensor {
    const rows = shapes.reduce((a, s) => a + s[0], 0);
    const shape = [rows, ...shapes[0].slice(1)];
    if (this.source.isDummy) return this.track(this.dummy(shape));
    const dtypes = names.map((n, i) => dtypeFromSafetensors(this.source.expect(n, shapes[i]).dtype));
    const diskDtype = dtypes[0];
    if (dtypes.some((d) => d !== diskDtype)) throw new Error(`tensors ${names.join(', ')} have different dtypes`);
    const staged = Tensor.empty(this.ops, shape, diskDtype);
    let offset = 0;
    for (const name of names) {
      const bytes = this.source.read(name);
      staged.copyFromHost(bytes, offset);
      offset += bytes.byteLength;
    }
    this.loadedBytes += staged.nbytes;
    const target = this.targetDtype ?? diskDtype;
    if (target === diskDtype) return this.track(staged);
    const out = Tensor.empty(this.ops, shape, target);
    check(this.ops, this.ops.convert(out.addr, target, staged.addr, diskDtype, staged.numel), `convert ${names[0]}`);
    staged.dispose();
    return this.track(out);
  }

  /**
   * A 2-D tensor stored [rows, cols] on disk, returned transposed as [cols, rows]
   * (GPT-2's Conv1D keeps weights [in, out]; Linear wants [out, in]).
   */
  getTransposed(name: string, diskShape: readonly [number, number]): Tensor {
    const [rows, cols] = diskShape;
    if (this.source.isDummy) return this.track(this.dummy([cols, rows]));
    const diskDtype = dtypeFromSafetensors(this.source.expect(name, diskShape).dtype);
    // Copied first: the source's bytes need not be aligned for a typed view.
    const bytes = this.source.read(name).slice();
    const View = DTYPE_BYTES[diskDtype] === 4 ? Uint32Array : Uint16Array;
    const src = new View(bytes.buffer, 0, rows * cols);
    const dst = new View(rows * cols);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) dst[c * rows + r] = src[r * cols + c];
    }
    const staged = Tensor.fromHost(this.ops, dst, [cols, rows], diskDtype);
    this.loadedBytes += staged.nbytes;
    const target = this.targetDtype ?? diskDtype;
    if (target === diskDtype) return this.track(staged);
    const out = Tensor.empty(this.ops, [cols, rows], target);
    check(this.ops, this.ops.convert(out.addr, target, staged.addr, diskDtype, staged.numel), `convert ${name}`);
    staged.dispose();
    return this.track(out);
  }

  /**
   * A tensor of `shape` made of checkpoint shards (ShardPiece), their bytes stacked
   * in order; zeros fill what the pieces leave (a vocabulary shard's padding rows).
   * The tensor-parallel layers' loader: each rank reads only its slices' bytes.
   */
  shard(pieces: readonly ShardPiece[], shape: readonly number[]): Tensor {
    if (this.source.isDummy) return this.track(this.dummy(shape));
    const dtypes = pieces.map((p) => dtypeFromSafetensors(this.source.expect(p.name, p.shape).dtype));
    const diskDtype = dtypes[0];
    if (dtypes.some((d) => d !== diskDtype)) throw new Error(`tensors ${pieces.map((p) => p.name).join(', ')} have different dtypes`);
    const es = DTYPE_BYTES[diskDtype];
    const total = shape.reduce((a, b) => a * b, 1) * es;
    const host = new Uint8Array(total);
    let offset = 0;
    for (const p of pieces) {
      const bytes = cutPiece(this.source.read(p.name), p, es);
      if (offset + bytes.byteLength > total) throw new Error(`shards of ${p.name} overflow the [${shape}] tensor they fill`);
      host.set(bytes, offset);
      offset += bytes.byteLength;
    }
    const staged = Tensor.fromHost(this.ops, host, shape, diskDtype);
    this.loadedBytes += staged.nbytes;
    const target = this.targetDtype ?? diskDtype;
    if (target === diskDtype) return this.track(staged);
    const out = Tensor.empty(this.ops, shape, target);
    check(this.ops, this.ops.convert(out.addr, target, staged.addr, diskDtype, staged.numel), `convert ${pieces[0].name}`);
    staged.dispose();
    return this.track(out);
  }

  /** Random weights in [-1e-3, 1e-3) like vLLM's dummy loader; each tensor its own stream. */
  private dummy(shape: readonly number[]): Tensor {
    const dtype = this.targetDtype ?? this.dummyDtype;
    const t = Tensor.empty(this.ops, shape, dtype);
    const seed = this.seed * 1000003 + ++this.dummyCounter;
    check(this.ops, this.ops.fillRandom(t.addr, dtype, t.numel, seed, 1e-3), 'fill_random');
    this.loadedBytes += t.numel * DTYPE_BYTES[dtype];
    return t;
  }
}

/** The bytes of one ShardPiece out of its tensor's bytes (es: bytes per element). */
function cutPiece(all: Uint8Array, p: ShardPiece, es: number): Uint8Array {
  let shape = p.shape;
  let base = 0;
  if (p.at !== undefined) {
    shape = shape.slice(1);
    base = p.at * shape.reduce((a, b) => a * b, 1) * es;
  }
  if (!(p.dim >= 0 && p.dim < shape.length && p.start >= 0 && p.end <= shape[p.dim] && p.start <= p.end)) {
    throw new Error(`shard [${p.start}, ${p.end}) of dim ${p.dim} is outside ${p.name} [${p.shape}]`);
  }
  const outer = shape.slice(0, p.dim).reduce((a, b) => a * b, 1);
  const inner = shape.slice(p.dim + 1).reduce((a, b) => a * b, 1) * es;
  const len = (p.end - p.start) * inner;
  const out = new Uint8Array(outer * len);
  for (let o = 0; o < outer; o++) {
    const from = base + (o * shape[p.dim] + p.start) * inner;
    out.set(all.subarray(from, from + len), o * len);
  }
  if (!p.transpose) return out;
  if (shape.length !== 2) throw new Error(`a transposed shard needs a 2-D tensor, ${p.name} is [${p.shape}]`);
  const rows = p.dim === 0 ? p.end - p.start : shape[0];
  const cols = p.dim === 1 ? p.end - p.start : shape[1];
  const View = es === 4 ? Uint32Array : Uint16Array;
  const src = new View(out.buffer, 0, rows * cols);
  const dst = new View(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) dst[c * rows + r] = src[r * cols + c];
  return new Uint8Array(dst.buffer);
}
