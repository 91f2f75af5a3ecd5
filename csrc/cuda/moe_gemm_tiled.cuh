// The tiled grouped expert GEMM of prefill-sized MoE batches: out[r, n] = x[row(r), :] .
// W[e] [n, :] for the rows r of each expert e, one launch, a block per (128 output
// features, TN rows of one expert), operands staged through shared memory by a
// 4-stage cp.async pipeline and multiplied on the tensor cores (mma.sync m16n8k16,
// f32 accumulation). Where the skinny kernel (skinny_mma.cuh) streams each expert's
// weights past a few rows, this one reuses a weight tile over TN rows: at hundreds of
// rows an expert (prefill) the skinny kernel re-reads the weights from L2 for every
// 32 rows and its blocks each walk all of their expert's rows.
//
// NOTE (batch invariance): every output is computed in exactly the skinny kernel's
// order for the experts (NW = 4 K ranges): K cut into 4 ranges of 32-wide k-blocks by
// K alone, each range's k-blocks chained in increasing order through two mma k16
// steps per k-block with the same k permutation (lane t's 16 bytes, elements 8t..8t+7
// of the k-block, split into (x, y) and (z, w)), a fresh accumulator per range, and
// the ranges' partials added to a running sum that starts at 0 in range order, as the
// skinny kernel sums its warps' partials. So both kernels give the same bits for every
// row, and which of them runs (chosen from the number of rows) never changes a
// token's result.
#pragma once
#include "common.cuh"
#include "cp_async.cuh"
#include "skinny_mma.cuh"

namespace vt {

constexpr int kTiledFeatures = 128;  // output features (W rows) a block
constexpr int kTiledStages = 3;      // pipeline stages of 64 k (two 32-wide k-blocks) each
constexpr int kTiledRanges = 4;      // K ranges: launch_skinny<T, 4>'s warps for the experts

// Shared memory of one block: kTiledStages x (W tile [128][64] + x tile [TN][64]).
template <typename T, int TN>
constexpr size_t tiled_smem_bytes() {
  return (size_t)kTiledStages * (kTiledFeatures + TN) * 64 * sizeof(T);
}

// A stage row holds 64 k in eight 16-byte chunks; chunk c of row r sits at c ^ 4 on odd
// rows, so the 8 lanes of a quarter-warp (rows 2p and 2p + 1, chunks 4u..4u+3) hit 8
// distinct bank groups.
__device__ __forceinline__ int tiled_chunk(int row, int c) { return c ^ ((row & 1) << 2); }

// Warp 0 of a block: which expert's which TN-row tile blockIdx.y is (experts in order,
// ceil(rows / TN) tiles each, found by warp scans over the offsets [E + 1]); *e = -1
// past the last tile.
template <int TN>
__device__ __forceinline__ void find_row_tile(int* e_out, int* r0_out, const int* __restrict__ offsets, int E, int lane) {
  int seen = 0, e_found = -1, r0 = 0;
  for (int base = 0; base < E && e_found < 0; base += 32) {
    const int e = base + lane;
    const int rows = e < E ? offsets[e + 1] - offsets[e] : 0;
    int incl = (rows + TN - 1) / TN;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int v = __shfl_up_sync(0xffffffffu, incl, o);
      if (lane >= o) incl += v;
    }
    const int want = (int)blockIdx.y - seen;
    const int excl = incl - (rows + TN - 1) / TN;
    const unsigned hit = __ballot_sync(0xffffffffu, want >= excl && want < incl);
    if (hit) {
      const int src = __ffs(hit) - 1;
      e_found = base + src;
      r0 = __shfl_sync(0xffffffffu, e < E ? offsets[e] + (want - excl) * TN : 0, src);
    }
    seen += __shfl_sync(0xffffffffu, incl, 31);
  }
  if (lane == 0) *e_out = e_found, *r0_out = r0;
}

// One 32-wide k-block u (0 or 1) of a stage into a warp's 64-feature x 32-row tile:
// ws [64][64] (its W rows), xs [32][64] (its x rows) in the stage's swizzled layout.
// Lane (g, t) reads elements 8t..8t+7 of the k-block from rows g, g + 8 (W) and g (x),
// as skinny_mma_kernel's lanes do, and feeds them to the same two mma k16 steps.
template <typename T>
__device__ __forceinline__ void tiled_kblock(float (&acc)[4][4][4], const T* ws, const T* xs, int g, int t, int u) {
  const int ch = 8 * tiled_chunk(g, 4 * u + t);  // every row read is g mod 8
  uint4 xb[4];
#pragma unroll
  for (int j = 0; j < 4; j++) xb[j] = *reinterpret_cast<const uint4*>(xs + (8 * j + g) * 64 + ch);
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const uint4 a = *reinterpret_cast<const uint4*>(ws + (16 * i + g) * 64 + ch);
    const uint4 b = *reinterpret_cast<const uint4*>(ws + (16 * i + g + 8) * 64 + ch);
#pragma unroll
    for (int j = 0; j < 4; j++) {
      mma_16816<T>(acc[i][j], a.x, b.x, a.y, b.y, xb[j].x, xb[j].y);
      mma_16816<T>(acc[i][j], a.z, b.z, a.w, b.w, xb[j].z, xb[j].w);
    }
  }
}

// out [R, N] = x rows . W[e]^T per expert, rows [offsets[e], offsets[e + 1]) of expert e.
//   x [*, K]: row r of the product reads x row x_rows[r] (x_rows null: row r)
//   w [E, N, K], offsets [E + 1], out [R, N]
// grid: (ceil(N / 128), >= the number of (expert, TN-row tile) pairs); block: 2 * TN
// threads = 2 x (TN / 32) warps, each a 64-feature x 32-row warp tile; TN = 64 is held
// to 170 registers so that 3 blocks share an SM.
template <typename T, int TN>
__global__ void __launch_bounds__(2 * TN, TN == 64 ? 3 : 1) moe_gemm_tiled_kernel(T* __restrict__ out, const T* __restrict__ x, const T* __restrict__ w,
                                                               const int* __restrict__ offsets, int E, int64_t N, int64_t K,
                                                               const int* __restrict__ x_rows) {
  extern __shared__ __align__(16) unsigned char tiled_smem[];
  T* sw = reinterpret_cast<T*>(tiled_smem);         // [stage][128][64]
  T* sx = sw + kTiledStages * kTiledFeatures * 64;  // [stage][TN][64]
  __shared__ int s_e, s_r0;
  constexpr int kThreads = 2 * TN;
  constexpr int kWChunks = kTiledFeatures * 8 / kThreads, kXChunks = TN * 8 / kThreads;  // 16-byte copies a thread a stage
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  if (warp == 0) find_row_tile<TN>(&s_e, &s_r0, offsets, E, lane);
  __syncthreads();
  const int e = s_e;
  if (e < 0) return;  // past the last tile (uniform over the block)
  const int64_t r0 = s_r0, r1 = min((int64_t)offsets[e + 1], r0 + TN);
  const int64_t n0 = (int64_t)blockIdx.x * kTiledFeatures;
  const int nkb = (int)((K + 31) / 32), nst = (nkb + 1) / 2;  // k-blocks, stages

  // Each thread's copies: chunk c (elements 8c..8c+7 of a stage's 64 k) of W rows
  // row0 + j * kRowStep and of x rows the same; an even step, so every row has row0's
  // parity and its chunk's place (tiled_chunk). Features past N, rows past r1 and
  // chunks past K read nothing and zero-fill.
  constexpr int kRowStep = kThreads / 8;
  const int row0 = threadIdx.x >> 3, c8 = 8 * (threadIdx.x & 7);
  const T* wsrc = w + ((int64_t)e * N + n0 + row0) * K + c8;
  const uint32_t wdst = mma::smem_u32(sw + row0 * 64 + 8 * tiled_chunk(row0, threadIdx.x & 7));
  const uint32_t xdst = mma::smem_u32(sx + row0 * 64 + 8 * tiled_chunk(row0, threadIdx.x & 7));
  int xrow[kXChunks];  // x row of each copy, -1: none
#pragma unroll
  for (int j = 0; j < kXChunks; j++) {
    const int64_t r = r0 + row0 + j * kRowStep;
    xrow[j] = r < r1 ? (x_rows ? x_rows[r] : (int)r) : -1;
  }
  auto load = [&](int st) {
    const int s = st % kTiledStages;
    const int64_t k = (int64_t)st * 64;
    const bool kin = k + c8 < K;
#pragma unroll
    for (int j = 0; j < kWChunks; j++) {
      const bool ok = kin && n0 + row0 + j * kRowStep < N;
      mma::cp_async16(wdst + (s * kTiledFeatures + j * kRowStep) * 128, ok ? wsrc + (int64_t)j * kRowStep * K + k : w, ok);
    }
#pragma unroll
    for (int j = 0; j < kXChunks; j++) {
      const bool ok = kin && xrow[j] >= 0;
      mma::cp_async16(xdst + (s * TN + j * kRowStep) * 128, ok ? x + (int64_t)xrow[j] * K + k + c8 : x, ok);
    }
  };

  const int wm = warp & 1, wn = warp >> 1;  // warp tile: features wm*64.., rows wn*32..
  float acc[4][4][4], sum[4][4][4];
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++)
#pragma unroll
      for (int q = 0; q < 4; q++) acc[i][j][q] = 0.f, sum[i][j][q] = 0.f;
  // The running sum takes each K range's partial at the range's end (an empty range
  // adds its zero partial, as the skinny kernel's idle warp does).
  int range = 0;
  auto close_ranges = [&](int done) {  // done: k-blocks computed so far
    while (range < kTiledRanges && (range + 1) * nkb / kTiledRanges <= done) {
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
          for (int q = 0; q < 4; q++) sum[i][j][q] += acc[i][j][q], acc[i][j][q] = 0.f;
      range++;
    }
  };
  close_ranges(0);
#pragma unroll
  for (int s = 0; s < kTiledStages - 1; s++) {
    if (s < nst) load(s);
    mma::cp_async_commit();
  }
  for (int st = 0; st < nst; st++) {
    mma::cp_async_wait<kTiledStages - 2>();
    __syncthreads();  // stage st landed for every thread; stage st - 1 is free again
    if (st + kTiledStages - 1 < nst) load(st + kTiledStages - 1);
    mma::cp_async_commit();
    const T* xs = sx + (st % kTiledStages) * TN * 64;
    const T* ws = sw + (st % kTiledStages) * kTiledFeatures * 64;
#pragma unroll
    for (int u = 0; u < 2; u++) {
      const int kb = 2 * st + u;
      if (kb >= nkb) break;  // uniform
      tiled_kblock<T>(acc, ws + wm * 64 * 64, xs + wn * 32 * 64, g, t, u);
      close_ranges(kb + 1);
    }
  }
  mma::cp_async_wait<0>();
  // C fragment: sum[i][j][q] is feature wm*64 + 16i + g (+8 for q >= 2), row wn*32 + 8j + 2t (+1 for odd q).
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++)
#pragma unroll
      for (int q = 0; q < 4; q++) {
        const int64_t n = n0 + wm * 64 + 16 * i + g + (q >= 2 ? 8 : 0);
        const int64_t r = r0 + wn * 32 + 8 * j + 2 * t + (q & 1);
        if (n < N && r < r1) out[r * N + n] = from_f32<T>(sum[i][j][q]);
      }
}

// Rows an expert must average (num_rows over min(num_rows, E)) for the tiled kernel
// to beat the skinny one: measured on the H200 (benchmarks/moe_gemm.cu, Qwen3-30B-A3B's
// experts, 2026-12-02): at 16 rows the skinny kernel is ahead on gate_up (277 vs 302
// us), at 32 the tiled one on both (gate_up 408 -> 320 us, down 271 -> 170 us).
constexpr int64_t kTiledMinRows = 32;

// VLLM_TS_MOE_TILED=0 keeps the skinny kernel at every size, to measure against.
inline bool moe_tiled_enabled() {
  static const bool on = [] {
    const char* v = getenv("VLLM_TS_MOE_TILED");
    return v == nullptr || strcmp(v, "0") != 0;
  }();
  return on;
}

template <typename T, int TN>
int launch_moe_gemm_tiled_tn(T* out, const T* x, const T* w, const int* offsets, int E, int64_t R, int64_t N, int64_t K, const int* x_rows,
                             const char* op) {
  constexpr size_t smem = tiled_smem_bytes<T, TN>();
  static bool opted = false;  // the attribute is set once per instantiation
  if (!opted) {
    VT_CUDA(cudaFuncSetAttribute(moe_gemm_tiled_kernel<T, TN>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    opted = true;
  }
  // At most ceil(R / TN) + E - 1 tiles (each expert's last one may be partial).
  int64_t tiles = (R + TN - 1) / TN + E - 1;
  if (tiles > R) tiles = R;
  if (tiles > 65535) return set_error("%s: %lld row tiles exceed the grid", op, (long long)tiles);
  const dim3 grid((unsigned)((N + kTiledFeatures - 1) / kTiledFeatures), (unsigned)tiles);
  moe_gemm_tiled_kernel<T, TN><<<grid, 2 * TN, smem, g.stream>>>(out, x, w, offsets, E, N, K, x_rows);
  return check_launch(op);
}

// Launches the tiled kernel on g.stream for R rows over E experts: TN = 128 rows a
// tile when the experts average at least 512 rows, else 64 (the same bits either way;
// measured there: 64-row tiles, 3 blocks an SM, are ahead up to 256 rows an expert,
// 128-row tiles, one block an SM, at 512: gate_up 157 -> 169, down 137 -> 144 TFLOP/s).
template <typename T>
int launch_moe_gemm_tiled(T* out, const T* x, const T* w, const int* offsets, int E, int64_t R, int64_t N, int64_t K, const int* x_rows,
                          const char* op) {
  if (R / (R < E ? R : E) >= 512) return launch_moe_gemm_tiled_tn<T, 128>(out, x, w, offsets, E, R, N, K, x_rows, op);
  return launch_moe_gemm_tiled_tn<T, 64>(out, x, w, offsets, E, R, N, K, x_rows, op);
}

}  // namespace vt
