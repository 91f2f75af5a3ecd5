// The only place that loads the compiled native libraries (csrc/ops.h).
// Each backend ("cpu", "cuda") is a separate shared library exporting the same
// C ABI; NativeOps types every function of it.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
// koffi is CommonJS; its types come with it.
const koffi = require('koffi') as typeof import('koffi');

export type Device = 'cpu' | 'cuda';

export enum DType {
  F32 = 0,
  F16 = 1,
  BF16 = 2,
  I32 = 3,
  I64 = 4,
  U8 = 5,
}

export const DTYPE_BYTES: Record<DType, number> = {
  [DType.F32]: 4,
  [DType.F16]: 2,
  [DType.BF16]: 2,
  [DType.I32]: 4,
  [DType.I64]: 8,
  [DType.U8]: 1,
};

/** Addresses are plain numbers (x86-64 user addresses fit in 2^53). */
export type Addr = number;

export interface NativeOps {
  readonly device: Device;
  /** C functions the loaded library does not export (built from older sources). */
  readonly missing: ReadonlySet<string>;
  lastError(): string;
  backendName(): string;
  deviceCount(): number;
  init(deviceIndex: number, numThreads: number): number;
  numThreads(): number;
  synchronize(): number;
  memInfo(free: BigUint64Array, total: BigUint64Array): number;
  deviceName(): string;
  malloc(bytes: number): Addr;
  free(ptr: Addr): number;
  hostPtr(addr: Addr): unknown;
  copyH2D(dst: Addr, src: ArrayBufferView, bytes: number): number;
  copyD2H(dst: ArrayBufferView, src: Addr, bytes: number): number;
  copyD2D(dst: Addr, src: Addr, bytes: number): number;
  memset(dst: Addr, value: number, bytes: number): number;
  convert(dst: Addr, dstDtype: DType, src: Addr, srcDtype: DType, n: number): number;
  fillRandom(dst: Addr, dtype: DType, n: number, seed: number, scale: number): number;
  embedding(out: Addr, weight: Addr, ids: Addr, numTokens: number, hidden: number, scale: number, wdt: DType, act: DType): number;
  gatherRows(out: Addr, x: Addr, rows: Addr, n: number, width: number, act: DType): number;
  add(out: Addr, a: Addr, b: Addr, n: number, act: DType): number;
  rmsNorm(out: Addr, x: Addr, residual: Addr, weight: Addr, numTokens: number, hidden: number, eps: number, weightOffset: number, wdt: DType, act: DType): number;
  layerNorm(out: Addr, x: Addr, residual: Addr, weight: Addr, bias: Addr, numTokens: number, hidden: number, eps: number, wdt: DType, act: DType): number;
  linear(out: Addr, x: Addr, weight: Addr, bias: Addr, M: number, N: number, K: number, wdt: DType, act: DType): number;
  rope(q: Addr, k: Addr, positions: Addr, cosSinCache: Addr, numTokens: number, numHeads: number, numKvHeads: number, headDim: number, rotaryDim: number, qStride: number, kStride: number, isNeox: number, act: DType): number;
  qkNormRope(q: Addr, k: Addr, qWeight: Addr, kWeight: Addr, positions: Addr, cosSinCache: Addr, numTokens: number, numHeads: number, numKvHeads: number, headDim: number, rotaryDim: number, qStride: number, kStride: number, eps: number, weightOffset: number, isNeox: number, wdt: DType, act: DType): number;
  ropeAndCache(q: Addr, k: Addr, v: Addr, positions: Addr, cosSinCache: Addr, kCache: Addr, vCache: Addr, slotMapping: Addr, numTokens: number, numHeads: number, numKvHeads: number, headDim: number, rotaryDim: number, qStride: number, kStride: number, vStride: number, isNeox: number, act: DType): number;
  qkNormRopeAndCache(q: Addr, k: Addr, v: Addr, qWeight: Addr, kWeight: Addr, positions: Addr, cosSinCache: Addr, kCache: Addr, vCache: Addr, slotMapping: Addr, numTokens: number, numHeads: number, numKvHeads: number, headDim: number, rotaryDim: number, qStride: number, kStride: number, vStride: number, eps: number, weightOffset: number, isNeox: number, wdt: DType, act: DType): number;
  siluAndMul(out: Addr, x: Addr, numTokens: number, d: number, act: DType): number;
  geluTanhAndMul(out: Addr, x: Addr, numTokens: number, d: number, act: DType): number;
  geluTanh(out: Addr, x: Addr, n: number, act: DType): number;
  scaleSoftcap(out: Addr, x: Addr, n: number, scale: number, softCap: number, act: DType): number;
  reshapeAndCache(key: Addr, value: Addr, kCache: Addr, vCache: Addr, slotMapping: Addr, numTokens: number, numKvHeads: number, headDim: number, keyStride: number, valueStride: number, act: DType): number;
  sample(outIds: Addr, logits: Addr, temperature: Addr, topK: Addr, topP: Addr, minP: Addr, uniform: Addr, n: number, vocab: number, act: DType): number;
  logprobs(outLogprobs: Addr, outIds: Addr, outRanks: Addr, logits: Addr, chosen: Addr, n: number, vocab: number, k: number, act: DType): number;
  applyTokenBitmask(logits: Addr, bitmask: Addr, rows: Addr, n: number, vocab: number, width: number, act: DType): number;
  moeTopkSoftmax(topkWeights: Addr, topkIds: Addr, logits: Addr, numTokens: number, numExperts: number, k: number, renormalize: number, act: DType): number;
  moePermute(expertOffsets: Addr, sortedTokenIds: Addr, invPerm: Addr, topkIds: Addr, numPairs: number, numExperts: number, k: number): number;
  moeRoute(topkWeights: Addr, topkIds: Addr, expertOffsets: Addr, sortedTokenIds: Addr, invPerm: Addr, logits: Addr, numTokens: number, numExperts: number, k: number, renormalize: number, act: DType): number;
  moeGroupedGemm(out: Addr, x: Addr, weight: Addr, expertOffsets: Addr, numRows: number, numExperts: number, N: number, K: number, wdt: DType, act: DType): number;
  moeGroupedGemmGather(out: Addr, x: Addr, xRows: Addr, weight: Addr, expertOffsets: Addr, numRows: number, numExperts: number, N: number, K: number, wdt: DType, act: DType): number;
  moeUnpermuteSum(out: Addr, y: Addr, topkWeights: Addr, invPerm: Addr, shared: Addr, sharedGate: Addr, numTokens: number, k: number, hidden: number, act: DType): number;
  vocabEmbedding(out: Addr, weight: Addr, ids: Addr, numTokens: number, hidden: number, scale: number, vocabStart: number, vocabEnd: number, wdt: DType, act: DType): number;
  copy2d(dst: Addr, dstPitch: number, src: Addr, srcPitch: number, width: number, height: number): number;
  ncclLoad(path: string): number;
  ncclVersion(): number;
  ncclUniqueId(out: Uint8Array): number;
  ncclInit(worldSize: number, rank: number, uniqueId: Uint8Array): number;
  allReduce(buf: Addr, n: number, dtype: DType): number;
  allGather(out: Addr, input: Addr, n: number, dtype: DType): number;
  ncclDestroy(): number;
  graphBegin(): number;
  graphEnd(): Addr;
  graphLaunch(graph: Addr): number;
  graphDestroy(graph: Addr): number;
  attention(out: Addr, q: Addr, kCache: Addr, vCache: Addr, queryStartLoc: Addr, seqLens: Addr, blockTables: Addr, numSeqs: number, numTokens: number, maxQueryLen: number, maxSeqLen: number, numHeads: number, numKvHeads: number, headDim: number, blockSize: number, maxBlocksPerSeq: number, qStride: number, scale: number, slidingWindow: number, softCap: number, act: DType): number;
}

// [js name, C declaration] — kept in the order of csrc/ops.h.
const DECLS: [keyof NativeOps, string][] = [
  ['lastError', 'const char* vt_last_error()'],
  ['backendName', 'const char* vt_backend_name()'],
  ['deviceCount', 'int vt_device_count()'],
  ['init', 'int vt_init(int, int)'],
  ['numThreads', 'int vt_num_threads()'],
  ['synchronize', 'int vt_synchronize()'],
  ['memInfo', 'int vt_mem_info(_Out_ uint64_t*, _Out_ uint64_t*)'],
  ['deviceName', 'const char* vt_device_name()'],
  ['malloc', 'uint64_t vt_malloc(uint64_t)'],
  ['free', 'int vt_free(uint64_t)'],
  ['hostPtr', 'void* vt_host_ptr(uint64_t)'],
  ['copyH2D', 'int vt_copy_h2d(uint64_t, const void*, uint64_t)'],
  ['copyD2H', 'int vt_copy_d2h(_Out_ void*, uint64_t, uint64_t)'],
  ['copyD2D', 'int vt_copy_d2d(uint64_t, uint64_t, uint64_t)'],
  ['memset', 'int vt_memset(uint64_t, int, uint64_t)'],
  ['convert', 'int vt_convert(uint64_t, int, uint64_t, int, uint64_t)'],
  ['fillRandom', 'int vt_fill_random(uint64_t, int, uint64_t, uint64_t, float)'],
  ['embedding', 'int vt_embedding(uint64_t, uint64_t, uint64_t, int64_t, int64_t, float, int, int)'],
  ['gatherRows', 'int vt_gather_rows(uint64_t, uint64_t, uint64_t, int64_t, int64_t, int)'],
  ['add', 'int vt_add(uint64_t, uint64_t, uint64_t, int64_t, int)'],
  ['rmsNorm', 'int vt_rms_norm(uint64_t, uint64_t, uint64_t, uint64_t, int64_t, int64_t, float, float, int, int)'],
  ['layerNorm', 'int vt_layer_norm(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, int64_t, int64_t, float, int, int)'],
  ['linear', 'int vt_linear(uint64_t, uint64_t, uint64_t, uint64_t, int64_t, int64_t, int64_t, int, int)'],
  ['rope', 'int vt_rope(uint64_t, uint64_t, uint64_t, uint64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int, int)'],
  ['qkNormRope', 'int vt_qk_norm_rope(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float, float, int, int, int)'],
  ['ropeAndCache', 'int vt_rope_and_cache(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int, int)'],
  ['qkNormRopeAndCache', 'int vt_qk_norm_rope_and_cache(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float, float, int, int, int)'],
  ['siluAndMul', 'int vt_silu_and_mul(uint64_t, uint64_t, int64_t, int64_t, int)'],
  ['geluTanhAndMul', 'int vt_gelu_tanh_and_mul(uint64_t, uint64_t, int64_t, int64_t, int)'],
  ['geluTanh', 'int vt_gelu_tanh(uint64_t, uint64_t, int64_t, int)'],
  ['scaleSoftcap', 'int vt_scale_softcap(uint64_t, uint64_t, int64_t, float, float, int)'],
  ['reshapeAndCache', 'int vt_reshape_and_cache(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int)'],
  ['moeTopkSoftmax', 'int vt_moe_topk_softmax(uint64_t, uint64_t, uint64_t, int64_t, int64_t, int64_t, int, int)'],
  ['moePermute', 'int vt_moe_permute(uint64_t, uint64_t, uint64_t, uint64_t, int64_t, int64_t, int64_t)'],
  ['moeRoute', 'int vt_moe_route(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, int64_t, int64_t, int64_t, int, int)'],
  ['moeGroupedGemm', 'int vt_moe_grouped_gemm(uint64_t, uint64_t, uint64_t, uint64_t, int64_t, int64_t, int64_t, int64_t, int, int)'],
  ['moeGroupedGemmGather', 'int vt_moe_grouped_gemm_gather(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, int64_t, int64_t, int64_t, int64_t, int, int)'],
  ['moeUnpermuteSum', 'int vt_moe_unpermute_sum(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, int64_t, int64_t, int64_t, int)'],
  ['sample', 'int vt_sample(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, int64_t, int64_t, int)'],
  ['logprobs', 'int vt_logprobs(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, int64_t, int64_t, int64_t, int)'],
  ['applyTokenBitmask', 'int vt_apply_token_bitmask(uint64_t, uint64_t, uint64_t, int64_t, int64_t, int64_t, int)'],
  ['vocabEmbedding', 'int vt_vocab_embedding(uint64_t, uint64_t, uint64_t, int64_t, int64_t, float, int64_t, int64_t, int, int)'],
  ['copy2d', 'int vt_copy_2d(uint64_t, int64_t, uint64_t, int64_t, int64_t, int64_t)'],
  ['ncclLoad', 'int vt_nccl_load(const char*)'],
  ['ncclVersion', 'int vt_nccl_version()'],
  ['ncclUniqueId', 'int vt_nccl_unique_id(_Out_ void*)'],
  ['ncclInit', 'int vt_nccl_init(int, int, const void*)'],
  ['allReduce', 'int vt_all_reduce(uint64_t, int64_t, int)'],
  ['allGather', 'int vt_all_gather(uint64_t, uint64_t, int64_t, int)'],
  ['ncclDestroy', 'int vt_nccl_destroy()'],
  ['graphBegin', 'int vt_graph_begin()'],
  ['graphEnd', 'uint64_t vt_graph_end()'],
  ['graphLaunch', 'int vt_graph_launch(uint64_t)'],
  ['graphDestroy', 'int vt_graph_destroy(uint64_t)'],
  ['attention', 'int vt_attention(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float, int64_t, float, int)'],
];

const here = dirname(fileURLToPath(import.meta.url));
/** The folder holding libvllm_cpu.so / libvllm_cuda.so: VLLM_TS_NATIVE_DIR or <package>/build. */
export function nativeDir(): string {
  return process.env.VLLM_TS_NATIVE_DIR ?? resolve(here, '..', '..', 'build');
}

export function libraryPath(device: Device): string {
  return join(nativeDir(), `libvllm_${device}.so`);
}

export function isAvailable(device: Device): boolean {
  return existsSync(libraryPath(device));
}

const loaded = new Map<Device, NativeOps>();

/** Loads (once per thread) the library of a device and wraps every op. */
export function loadNative(device: Device): NativeOps {
  const cached = loaded.get(device);
  if (cached) return cached;
  const path = libraryPath(device);
  if (!existsSync(path)) {
    const how = device === 'cpu' ? 'npm run build:native' : 'npm run build:cuda';
    throw new Error(`native library for device '${device}' not found at ${path}: run \`${how}\``);
  }
  const lib = koffi.load(path);
  const missing = new Set<string>();
  const ops: Record<string, unknown> = { device, missing };
  for (const [name, decl] of DECLS) {
    try {
      ops[name] = lib.func(decl);
    } catch {
      // A library built from older sources: fail when the op is used, not at load.
      missing.add(name);
      ops[name] = () => {
        throw new Error(`${path} lacks ${decl.split('(')[0].split(' ').pop()}: rebuild it (${device === 'cpu' ? 'npm run build:native' : 'npm run build:cuda'})`);
      };
    }
  }
  const native = ops as unknown as NativeOps;
  loaded.set(device, native);
  return native;
}

/** Throws the library's last error when an op returned non-zero. */
export function check(native: NativeOps, rc: number, what: string): void {
  if (rc !== 0) throw new Error(`${what} failed on ${native.device}: ${native.lastError()}`);
}

/** A zero-copy ArrayBuffer over host-visible native memory (CPU library only). */
export function hostView(native: NativeOps, addr: Addr, bytes: number): ArrayBuffer {
  if (native.device !== 'cpu') throw new Error('hostView needs CPU memory');
  return koffi.view(native.hostPtr(addr), bytes);
}
