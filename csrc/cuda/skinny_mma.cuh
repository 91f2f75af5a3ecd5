// The weight-streaming skinny GEMM of decode: out[r, n] = x[r, :] . W[n, :] (+ bias[n])
// for a few rows r, on the tensor cores (mma.sync m16n8k16, f32 accumulation), with W
// read once from device memory in 16-byte loads. Used by vt_linear for M <= 16 (decode)
// and by the MoE grouped GEMM (one block per (expert with rows, 16 output features)).
//
// Work split: a block of kSkinnyWarps warps owns 16 output features (W rows) and all
// of its rows of x; the warps split K into kSkinnyWarps contiguous ranges of 32-wide
// k-blocks (the split depends on K alone); within a k-block a lane t of a row group
// reads 8 consecutive k (k0 + 8t .. +7) of W and of x, which the mma consumes as two
// k16 steps (the same k permutation on both operands, so the dot product is unchanged).
//
// NOTE (batch invariance): an output element is the sum, in this fixed order, of its
// warps' partials (warp 0 first), each the mma chain over that warp's k-blocks in
// increasing order. Nothing in that order depends on how many rows x has, which rows
// share an expert, or how rows are grouped into 8-column n-tiles, so a row's result
// is bit-identical at every M and in every batch.
#pragma once
#include <stdlib.h>
#include <string.h>

#include "common.cuh"

namespace vt {

constexpr int kSkinnyWarps = 8;    // warps per block, each one K range
constexpr int kSkinnyFeatures = 16;  // output features (W rows) per block

// NOTE: the loads and the mma are volatile asm, so they keep their program order: a
// stage's loads are all issued before the previous stage's mma consume theirs (the
// compiler would otherwise sink each load to its first use and keep one in flight).
template <typename T>
__device__ __forceinline__ void mma_16816(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  } else {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  }
}

// 16 bytes at p when on, else zeros. A weight chunk is read once, so it skips L1.
__device__ __forceinline__ uint4 ld_stream16(const void* p, bool on) {
  uint4 v;
  asm volatile("{\n .reg .pred q;\n setp.ne.b32 q, %5, 0;\n mov.b32 %0, 0;\n mov.b32 %1, 0;\n mov.b32 %2, 0;\n mov.b32 %3, 0;\n"
               " @q ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n}\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p), "r"((int)on));
  return v;
}

// The activations: read by every block, so they stay in L1.
__device__ __forceinline__ uint4 ld_cached16(const void* p, bool on) {
  uint4 v;
  asm volatile("{\n .reg .pred q;\n setp.ne.b32 q, %5, 0;\n mov.b32 %0, 0;\n mov.b32 %1, 0;\n mov.b32 %2, 0;\n mov.b32 %3, 0;\n"
               " @q ld.global.nc.v4.u32 {%0,%1,%2,%3}, [%4];\n}\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p), "r"((int)on));
  return v;
}

// One pipeline stage: U k-blocks of the 16 features (a: rows g, b: rows g + 8) and of
// the NT n-tiles of x.
template <int U, int NT>
struct SkinnyStage {
  uint4 a[U], b[U], x[NT][U];
};

// out [*, N] (rows r0..r1-1 written) = x [*, K] rows r0..r1-1 . W [N, K]^T (+ bias [N]).
// offsets == nullptr: one matrix, rows [0, M). Otherwise W is [E, N, K] and the block
// serves the blockIdx.y-th expert that has rows, rows [offsets[e], offsets[e + 1]).
// NT: 8-column n-tiles per pass over x's rows (any NT gives the same bits).
// x_rows (MoE): row r of the product reads x row x_rows[r] (the gather fused in); null:
// row r.
// grid: (ceil(N / 16), M ? 1 : min(rows, E)); block: 32 * kSkinnyWarps threads.
// NW: warps a block (K cut into NW ranges); the reduction order depends on NW, so a
// caller picks it from N and K alone (never from M) to keep batch invariance.
template <typename T, int U, int NT, bool PIPE = true, int NW = kSkinnyWarps>
__global__ void __launch_bounds__(32 * NW) skinny_mma_kernel(T* __restrict__ out, const T* __restrict__ x, const T* __restrict__ w,
                                                                       const T* __restrict__ bias, const int* __restrict__ offsets, int E,
                                                                       int64_t M, int64_t N, int64_t K, const int* __restrict__ x_rows) {
  __shared__ float part[NW][32 * 4 * NT];
  __shared__ int s_e;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  int64_t r0 = 0, r1 = M;
  const T* we = w;
  if (offsets) {
    // The blockIdx.y-th expert with rows, found by warp 0 with ballots over the offsets.
    if (warp == 0) {
      int seen = 0, found = -1;
      for (int base = 0; base < E && found < 0; base += 32) {
        const int e = base + lane;
        const bool has = e < E && offsets[e + 1] > offsets[e];
        const unsigned b = __ballot_sync(0xffffffffu, has);
        const int want = (int)blockIdx.y - seen;
        if (want < __popc(b)) {
          const bool me = has && __popc(b & ((1u << lane) - 1u)) == want;
          const unsigned who = __ballot_sync(0xffffffffu, me);
          found = base + __ffs(who) - 1;
        }
        seen += __popc(b);
      }
      if (lane == 0) s_e = found;
    }
    __syncthreads();
    const int e = s_e;
    if (e < 0) return;  // fewer experts with rows than blocks (uniform over the block)
    r0 = offsets[e];
    r1 = offsets[e + 1];
    we = w + (int64_t)e * N * K;
  }
  const int64_t n0 = (int64_t)blockIdx.x * kSkinnyFeatures;
  const int nkb = (int)((K + 31) / 32);
  const int kb0 = warp * nkb / NW, kb1 = (warp + 1) * nkb / NW;
  const bool va = n0 + g < N, vb = n0 + g + 8 < N;
  const T* wa = we + (va ? n0 + g : 0) * K + 8 * t;
  const T* wb = we + (vb ? n0 + g + 8 : 0) * K + 8 * t;
  for (int64_t c0 = r0; c0 < r1; c0 += 8 * NT) {
    float acc[NT][4];
#pragma unroll
    for (int j = 0; j < NT; j++) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
    // Loads stage kb into st (k-blocks past this warp's range read nothing).
    const T* xa[NT];
    bool vx[NT];
#pragma unroll
    for (int j = 0; j < NT; j++) {
      const int64_t r = c0 + 8 * j + g;
      vx[j] = r < r1;
      const int64_t row = vx[j] ? r : r0;
      xa[j] = x + (x_rows ? (int64_t)x_rows[row] : row) * K + 8 * t;
    }
    auto load = [&](SkinnyStage<U, NT>& st, int kb) {
      const T* pa = wa + kb * 32;
      const T* pb = wb + kb * 32;
#pragma unroll
      for (int u = 0; u < U; u++) {
        const bool in = kb + u < kb1 && (kb + u) * 32 + 8 * t < K;
        st.a[u] = ld_stream16(pa + u * 32, in && va);
        st.b[u] = ld_stream16(pb + u * 32, in && vb);
#pragma unroll
        for (int j = 0; j < NT; j++) st.x[j][u] = ld_cached16(xa[j] + (kb + u) * 32, in && vx[j]);
      }
    };
    // The mma of stage kb, k-block by k-block in increasing order (the fixed order).
    auto compute = [&](const SkinnyStage<U, NT>& st, int kb) {
#pragma unroll
      for (int u = 0; u < U; u++) {
        if (kb + u >= kb1) break;  // uniform over the warp
#pragma unroll
        for (int j = 0; j < NT; j++) {
          if (j > 0 && c0 + 8 * j >= r1) break;  // an empty n-tile (uniform)
          mma_16816<T>(acc[j], st.a[u].x, st.b[u].x, st.a[u].y, st.b[u].y, st.x[j][u].x, st.x[j][u].y);
          mma_16816<T>(acc[j], st.a[u].z, st.b[u].z, st.a[u].w, st.b[u].w, st.x[j][u].z, st.x[j][u].w);
        }
      }
    };
    if constexpr (PIPE) {
      // Two stages in flight: the next stage's loads are issued before this one's mma.
      SkinnyStage<U, NT> s0, s1;
      load(s0, kb0);
      for (int kb = kb0; kb < kb1; kb += 2 * U) {
        load(s1, kb + U);
        compute(s0, kb);
        load(s0, kb + 2 * U);
        compute(s1, kb + U);
      }
    } else {
      SkinnyStage<U, NT> s0;
      for (int kb = kb0; kb < kb1; kb += U) {
        load(s0, kb);
        compute(s0, kb);
      }
    }
    // The warps' partials, summed in warp order. Element i of a lane: n-tile i / 4, C
    // register i % 4 (rows g / g + 8 of the 16 features, columns 2t / 2t + 1 of the tile).
#pragma unroll
    for (int j = 0; j < NT; j++)
#pragma unroll
      for (int q = 0; q < 4; q++) part[warp][(j * 4 + q) * 32 + lane] = acc[j][q];
    __syncthreads();
    for (int i = threadIdx.x; i < 32 * 4 * NT; i += blockDim.x) {
      const int l = i & 31, q = (i >> 5) & 3, j = i >> 7;
      const int64_t n = n0 + (l >> 2) + (q >= 2 ? 8 : 0);
      const int64_t r = c0 + 8 * j + 2 * (l & 3) + (q & 1);
      if (n < N && r < r1) {
        float s = 0.f;
#pragma unroll
        for (int v = 0; v < NW; v++) s += part[v][i];
        if (bias) s += to_f32(bias[n]);
        out[r * N + n] = from_f32<T>(s);
      }
    }
    __syncthreads();
  }
}

// VLLM_TS_SKINNY_GEMM=0 turns the skinny kernel off (cuBLASLt for every linear, the
// tiled grouped GEMM for the experts), to measure against.
inline bool skinny_enabled() {
  static const bool on = [] {
    const char* v = getenv("VLLM_TS_SKINNY_GEMM");
    return v == nullptr || strcmp(v, "0") != 0;
  }();
  return on;
}

// Whether the skinny kernel can take these operands: 16-bit activations and weights of
// the same type, 8-element rows and 16-byte aligned bases.
inline bool skinny_ok(int act, int wdt, int64_t K, uint64_t x, uint64_t w) {
  return skinny_enabled() && (act == VT_BF16 || act == VT_F16) && wdt == act && K % 8 == 0 && K < (1LL << 30) && x % 16 == 0 && w % 16 == 0;
}

template <typename T, int U, int NT, bool PIPE, int NW>
void launch_skinny_variant(T* out, const T* x, const T* w, const T* bias, const int* offsets, int E, int64_t M, int64_t N, int64_t K,
                           int64_t grid_y, const int* x_rows) {
  const dim3 grid((unsigned)((N + kSkinnyFeatures - 1) / kSkinnyFeatures), (unsigned)grid_y);
  skinny_mma_kernel<T, U, NT, PIPE, NW><<<grid, 32 * NW, 0, g.stream>>>(out, x, w, bias, offsets, E, M, N, K, x_rows);
}

// Launches the skinny kernel on g.stream (offsets: see the kernel). rows_hint: the
// largest number of rows one block may see, to pick the n-tiles per pass. Every
// variant gives the same bits (the same order); they differ in loads in flight.
// Measured on the H200 (benchmarks/skinny_gemm.cu, 2026-12-02): one stage of 4
// k-blocks (72 registers, 3 blocks an SM) streams best for short rows, at one or two
// n-tiles; two stages of 2 for long rows (K >= 8192: 56 k-blocks a warp).
// x_rows: the fused gather (skinny_mma_kernel). NW: warps a block, which sets the
// reduction order, so the caller picks it from N, K and the op, never from M.
// Measured on the H200 (benchmarks/skinny_gemm.cu, 2026-12-02 pm): 16 warps when the
// matrix has fewer 16-feature blocks than the GPU has SMs (Qwen3-30B-A3B's o_proj
// 2048x4096: 2.0 -> 2.5 TB/s; its router 128x2048: 4.3 -> 2.8 us); 4 for the MoE
// experts, whose grid has a block row per expert (gate_up 1536x2048 at batch 1:
// 3.4 -> 3.9 TB/s, down 2048x768: 2.7 -> 3.0).
template <typename T, int NW = kSkinnyWarps>
int launch_skinny(T* out, const T* x, const T* w, const T* bias, const int* offsets, int E, int64_t M, int64_t N, int64_t K,
                  int64_t grid_y, int64_t rows_hint, const char* op, const int* x_rows = nullptr) {
  if (rows_hint <= 8 && K < 8192)
    launch_skinny_variant<T, 4, 1, false, NW>(out, x, w, bias, offsets, E, M, N, K, grid_y, x_rows);
  else if (rows_hint <= 8)
    launch_skinny_variant<T, 2, 1, true, NW>(out, x, w, bias, offsets, E, M, N, K, grid_y, x_rows);
  else if (rows_hint <= 16)
    launch_skinny_variant<T, 4, 2, false, NW>(out, x, w, bias, offsets, E, M, N, K, grid_y, x_rows);
  else
    launch_skinny_variant<T, 2, 4, true, NW>(out, x, w, bias, offsets, E, M, N, K, grid_y, x_rows);
  return check_launch(op);
}

}  // namespace vt
