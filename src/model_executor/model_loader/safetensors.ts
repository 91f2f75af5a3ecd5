// Our own safetensors reader: validates every header at open and reads tensor
// bytes lazily (fs.readSync at the tensor's offset), so a large checkpoint never
// sits whole in memory. Single file or sharded (model.safetensors.index.json).
//
// File layout: [u64 LE header length N][N bytes of JSON header][data]. The header
// maps name -> {dtype, shape, data_offsets: [begin, end]} (offsets relative to the
// start of data) plus an optional "__metadata__" entry.
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { bf16ToF32, f16ToF32 } from '../../native/dtype.js';
import type { TorchDtype } from '../../config/types.js';

export type StDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL' | 'F8_E4M3' | 'F8_E5M2';

export const ST_DTYPE_BYTES: Record<StDtype, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
};

export const TORCH_TO_ST_DTYPE: Record<TorchDtype, StDtype> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16' };

export interface TensorInfo {
  name: string;
  dtype: StDtype;
  shape: number[];
  /** Path of the file that holds it. */
  file: string;
  /** Absolute byte offset of the data in `file`. */
  offset: number;
  nbytes: number;
}

/** What the model loader reads weights through: real files or dummy (random) weights. */
export interface Weights {
  readonly isDummy: boolean;
  names(): string[];
  has(name: string): boolean;
  info(name: string): TensorInfo;
  /** Raw little-endian bytes; into `dst` when given (must be nbytes long). */
  read(name: string, dst?: Uint8Array): Uint8Array;
  /** info(name), after checking that the tensor exists with exactly `shape`. */
  expect(name: string, shape: readonly number[]): TensorInfo;
  close(): void;
}

/** A model file that is missing, truncated or inconsistent. */
export class WeightFileError extends Error {
  constructor(readonly file: string, message: string, readonly tensor?: string) {
    super(`${file}: ${message}`);
    this.name = 'WeightFileError';
  }
}

const INDEX_FILE = 'model.safetensors.index.json';
const SINGLE_FILE = 'model.safetensors';
/** safetensors' own limit on header size. */
const MAX_HEADER_BYTES = 100_000_000;
/** readSync moves at most 2 GiB per call. */
const READ_CHUNK = 1 << 30;

const shapeStr = (s: readonly number[]) => `[${s.join(', ')}]`;

/** Parses and validates one file's header; returns its tensors. */
function readHeader(file: string, fd: number): TensorInfo[] {
  const size = fstatSync(fd).size;
  if (size < 8) throw new WeightFileError(file, `file has ${size} bytes, too small for safetensors (truncated download?)`);
  const lenBuf = Buffer.alloc(8);
  readSync(fd, lenBuf, 0, 8, 0);
  const headerLen = lenBuf.readBigUInt64LE(0);
  if (headerLen > BigInt(size - 8)) {
    throw new WeightFileError(
      file,
      `header length ${headerLen} goes beyond the end of the file (${size} bytes): the file is truncated or not safetensors`,
    );
  }
  const n = Number(headerLen);
  if (n > MAX_HEADER_BYTES) throw new WeightFileError(file, `header length ${n} is over safetensors' limit of ${MAX_HEADER_BYTES} bytes`);
  const headerBuf = Buffer.alloc(n);
  readSync(fd, headerBuf, 0, n, 8);
  let header: unknown;
  try {
    header = JSON.parse(headerBuf.toString('utf8'));
  } catch (e) {
    throw new WeightFileError(file, `header is not valid JSON (${(e as Error).message}): the file is corrupt or not safetensors`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new WeightFileError(file, 'header is not a JSON object: the file is corrupt or not safetensors');
  }
  const dataStart = 8 + n;
  const dataSize = size - dataStart;
  const tensors: TensorInfo[] = [];
  const spans: { name: string; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') continue;
    const bad = (what: string) => new WeightFileError(file, `tensor ${name}: ${what}`, name);
    const entry = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (entry === null || typeof entry !== 'object') throw bad('header entry is not an object');
    const dtype = entry.dtype as StDtype;
    if (typeof dtype !== 'string' || !(dtype in ST_DTYPE_BYTES)) {
      throw bad(`unsupported dtype ${JSON.stringify(entry.dtype)} (supported: ${Object.keys(ST_DTYPE_BYTES).join(', ')})`);
    }
    const shape = entry.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw bad(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    const offs = entry.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0) || offs[0] > offs[1]) {
      throw bad(`data_offsets ${JSON.stringify(offs)} are not [begin, end] with 0 <= begin <= end`);
    }
    const [begin, end] = offs as [number, number];
    const need = shape.reduce((a: number, b: number) => a * b, 1) * ST_DTYPE_BYTES[dtype];
    if (end - begin !== need) {
      throw bad(
        `data_offsets [${begin}, ${end}] hold ${end - begin} bytes but ${dtype} x ${shapeStr(shape)} needs ${need}: the header is inconsistent`,
      );
    }
    if (end > dataSize) {
      throw bad(`data ends at byte ${dataStart + end} but the file has only ${size} bytes: the file is truncated (re-download it)`);
    }
    tensors.push({ name, dtype, shape: [...shape], file, offset: dataStart + begin, nbytes: need });
    if (need > 0) spans.push({ name, begin, end });
  }
  spans.sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < spans.length; i++) {
    const a = spans[i - 1];
    const b = spans[i];
    if (b.begin < a.end) {
      throw new WeightFileError(
        file,
        `tensors ${a.name} [${a.begin}, ${a.end}) and ${b.name} [${b.begin}, ${b.end}) overlap: the header is inconsistent`,
        b.name,
      );
    }
  }
  return tensors;
}

export class WeightSource implements Weights {
  readonly isDummy = false;
  private closed = false;

  private constructor(
    /** The file named in errors about the checkpoint as a whole (single file or index). */
    readonly origin: string,
    private readonly tensors: Map<string, TensorInfo>,
    private readonly fds: Map<string, number>,
  ) {}

  /**
   * Opens a model folder: model.safetensors.index.json's shards, else model.safetensors,
   * else every *.safetensors in it.
   */
  static open(dir: string): WeightSource {
    if (existsSync(dir) && statSync(dir).isFile()) return WeightSource.openFiles(dir, [dir]);
    const indexPath = join(dir, INDEX_FILE);
    if (existsSync(indexPath)) return WeightSource.openIndex(dir, indexPath);
    const single = join(dir, SINGLE_FILE);
    if (existsSync(single)) return WeightSource.openFiles(single, [single]);
    const all = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.safetensors')).sort() : [];
    if (all.length === 0) {
      throw new WeightFileError(
        join(dir, SINGLE_FILE),
        `missing: no *.safetensors weights in ${dir} (only safetensors checkpoints are supported; use --load-format dummy for random weights)`,
      );
    }
    return WeightSource.openFiles(dir, all.map((f) => join(dir, f)));
  }

  /** Opens one .safetensors file (e.g. a reference-outputs file). */
  static openFile(path: string): WeightSource {
    return WeightSource.openFiles(path, [path]);
  }

  private static openIndex(dir: string, indexPath: string): WeightSource {
    let index: { weight_map?: unknown };
    try {
      index = JSON.parse(readFileSync(indexPath, 'utf8'));
    } catch (e) {
      throw new WeightFileError(indexPath, `not valid JSON (${(e as Error).message}); re-download it`);
    }
    const map = index?.weight_map;
    if (map === null || typeof map !== 'object' || Array.isArray(map)) {
      throw new WeightFileError(indexPath, 'has no "weight_map" object mapping tensor names to shard files');
    }
    const weightMap = map as Record<string, unknown>;
    const shards = [...new Set(Object.values(weightMap).map(String))].sort();
    const source = WeightSource.openFiles(
      indexPath,
      shards.map((s) => join(dir, s)),
    );
    for (const [name, shard] of Object.entries(weightMap)) {
      const t = source.tensors.get(name);
      if (!t || t.file !== join(dir, String(shard))) {
        source.close();
        throw new WeightFileError(join(dir, String(shard)), `missing tensor ${name} (listed there by ${INDEX_FILE})`, name);
      }
    }
    return source;
  }

  private static openFiles(origin: string, files: string[]): WeightSource {
    const tensors = new Map<string, TensorInfo>();
    const fds = new Map<string, number>();
    try {
      for (const file of files) {
        if (!existsSync(file)) throw new WeightFileError(file, 'missing: the checkpoint is incomplete (re-download it)');
        const fd = openSync(file, 'r');
        fds.set(file, fd);
        for (const t of readHeader(file, fd)) {
          const prev = tensors.get(t.name);
          if (prev) throw new WeightFileError(file, `tensor ${t.name} is also in ${prev.file}`, t.name);
          tensors.set(t.name, t);
        }
      }
    } catch (e) {
      for (const fd of fds.values()) closeSync(fd);
      throw e;
    }
    return new WeightSource(origin, tensors, fds);
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new WeightFileError(this.origin, `missing tensor ${name}`, name);
    return t;
  }

  expect(name: string, shape: readonly number[]): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) {
      throw new WeightFileError(this.origin, `missing tensor ${name} (the model expects ${shapeStr(shape)}): is this the right checkpoint for the architecture?`, name);
    }
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new WeightFileError(t.file, `tensor ${name} has shape ${shapeStr(t.shape)} but the model expects ${shapeStr(shape)}`, name);
    }
    return t;
  }

  read(name: string, dst?: Uint8Array): Uint8Array {
    if (this.closed) throw new Error(`${this.origin}: read of ${name} after close()`);
    const t = this.info(name);
    const out = dst ?? new Uint8Array(t.nbytes);
    if (out.byteLength !== t.nbytes) {
      throw new WeightFileError(t.file, `tensor ${name}: destination holds ${out.byteLength} bytes, the tensor ${t.nbytes}`, name);
    }
    const fd = this.fds.get(t.file)!;
    for (let done = 0; done < t.nbytes; ) {
      const len = Math.min(READ_CHUNK, t.nbytes - done);
      const got = readSync(fd, out, done, len, t.offset + done);
      if (got === 0) throw new WeightFileError(t.file, `tensor ${name}: file ended while reading (was it truncated after opening?)`, name);
      done += got;
    }
    return out;
  }

  /** Values as float32 (from F32 / F16 / BF16 storage). */
  readF32(name: string): Float32Array {
    const t = this.info(name);
    const b = this.read(name);
    const n = t.nbytes / ST_DTYPE_BYTES[t.dtype];
    switch (t.dtype) {
      case 'F32':
        return new Float32Array(b.buffer, b.byteOffset, n);
      case 'F16':
        return f16ToF32(new Uint16Array(b.buffer, b.byteOffset, n));
      case 'BF16':
        return bf16ToF32(new Uint16Array(b.buffer, b.byteOffset, n));
      default:
        throw new WeightFileError(t.file, `tensor ${name}: readF32 of a ${t.dtype} tensor`, name);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}
