// Small-M linear (decode): out[M, N] = x[M, K] W[N, K]^T (+ bias) for M <= 2 with
// f16/bf16 weights and activations of the same dtype. Bound by reading W once, so
// the kernel streams W at full memory bandwidth instead of tiling for tensor cores.
#include <stdlib.h>

#include "common.cuh"

namespace vt {

namespace {

// NOTE: measured on an H100 against cuBLASLt (weights not in L2): faster at M = 1, 2
// on every Llama-3-8B shape, mixed at M = 4 (down slower) and slower at M = 8.
constexpr int kMaxGemvM = 2;   // largest M handled here
constexpr int kWarps = 4;      // warps per block
constexpr int kInFlight = 8;   // 16-byte W loads in flight per thread

// 16 bytes of W that bypass L1: every byte of W is read exactly once.
__device__ __forceinline__ uint4 load_stream(const void* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

template <typename T>
__device__ __forceinline__ void dot8(float& acc, const uint4& w, const uint4& x) {
  const T* a = reinterpret_cast<const T*>(&w);
  const T* b = reinterpret_cast<const T*>(&x);
#pragma unroll
  for (int i = 0; i < 8; i++) acc = fmaf(to_f32(a[i]), to_f32(b[i]), acc);
}

// NOTE: one warp owns R consecutive rows of W. Each lane walks the row in 16-byte
// vectors (lane, lane + 32, ...), keeping U = kInFlight / R vectors per row in
// flight; x (small, reused by every row) is read through L1, and each x vector
// serves all R rows. The M x R partial dot products are reduced with shuffles.
// V = K / 8 vectors per row.
template <typename T, int M, int R>
__global__ void __launch_bounds__(kWarps * 32) gemv_kernel(T* __restrict__ out, const T* __restrict__ x, const T* __restrict__ w,
                                                          const T* __restrict__ bias, int64_t N, int64_t V) {
  constexpr int U = kInFlight / R;
  const int lane = threadIdx.x & 31;
  const int64_t n0 = ((int64_t)blockIdx.x * kWarps + (threadIdx.x >> 5)) * R;
  if (n0 >= N) return;
  const uint4* wrow[R];
#pragma unroll
  for (int r = 0; r < R; r++) wrow[r] = reinterpret_cast<const uint4*>(w) + (n0 + r < N ? n0 + r : N - 1) * V;
  const uint4* xv = reinterpret_cast<const uint4*>(x);
  float acc[M][R];
#pragma unroll
  for (int m = 0; m < M; m++)
#pragma unroll
    for (int r = 0; r < R; r++) acc[m][r] = 0.f;

  int64_t j = lane;
  for (; j + 32 * (U - 1) < V; j += 32 * U) {
    uint4 wv[U][R];
#pragma unroll
    for (int u = 0; u < U; u++)
#pragma unroll
      for (int r = 0; r < R; r++) wv[u][r] = load_stream(wrow[r] + j + 32 * u);
#pragma unroll
    for (int u = 0; u < U; u++)
#pragma unroll
      for (int m = 0; m < M; m++) {
        uint4 xx = __ldg(xv + m * V + j + 32 * u);
#pragma unroll
        for (int r = 0; r < R; r++) dot8<T>(acc[m][r], wv[u][r], xx);
      }
  }
  for (; j < V; j += 32) {
    uint4 wv[R];
#pragma unroll
    for (int r = 0; r < R; r++) wv[r] = load_stream(wrow[r] + j);
#pragma unroll
    for (int m = 0; m < M; m++) {
      uint4 xx = __ldg(xv + m * V + j);
#pragma unroll
      for (int r = 0; r < R; r++) dot8<T>(acc[m][r], wv[r], xx);
    }
  }

#pragma unroll
  for (int m = 0; m < M; m++)
#pragma unroll
    for (int r = 0; r < R; r++) {
      float s = warp_sum(acc[m][r]);
      if (lane == m * R + r && n0 + r < N) {
        if (bias) s += to_f32(bias[n0 + r]);
        out[m * N + n0 + r] = from_f32<T>(s);
      }
    }
}

// Rows per warp: more rows share each x load, fewer rows keep more warps busy.
// Measured best: 1 at M = 1, 2 at M = 2. VLLM_TS_GEMV_ROWS=1|2|4 overrides (tuning).
int rows_per_warp(int64_t M) {
  static int forced = [] {
    const char* v = getenv("VLLM_TS_GEMV_ROWS");
    int r = v ? atoi(v) : 0;
    return (r == 1 || r == 2 || r == 4) ? r : 0;
  }();
  if (forced) return forced;
  return M == 1 ? 1 : 2;
}

template <typename T, int M, int R>
int launch(uint64_t out, uint64_t x, uint64_t w, uint64_t bias, int64_t N, int64_t K) {
  int64_t warps = (N + R - 1) / R;
  int64_t blocks = (warps + kWarps - 1) / kWarps;
  if (blocks > 2147483647LL) return set_error("vt_linear: N = %lld is too large for the GEMV kernel", (long long)N);
  gemv_kernel<T, M, R><<<(unsigned)blocks, kWarps * 32, 0, g.stream>>>((T*)out, (const T*)x, (const T*)w, (const T*)bias, N, K / 8);
  return check_launch("vt_linear (GEMV)");
}

template <typename T, int M>
int launch_rows(uint64_t out, uint64_t x, uint64_t w, uint64_t bias, int64_t N, int64_t K) {
  switch (rows_per_warp(M)) {
    case 1: return launch<T, M, 1>(out, x, w, bias, N, K);
    case 2: return launch<T, M, 2>(out, x, w, bias, N, K);
    default: return launch<T, M, 4>(out, x, w, bias, N, K);
  }
}

template <typename T>
int launch_m(uint64_t out, uint64_t x, uint64_t w, uint64_t bias, int64_t M, int64_t N, int64_t K) {
  switch (M) {
    case 1: return launch_rows<T, 1>(out, x, w, bias, N, K);
    default: return launch_rows<T, 2>(out, x, w, bias, N, K);
  }
}

}  // namespace

bool gemv_applies(uint64_t out, uint64_t x, uint64_t weight, int64_t M, int64_t K, int wdt, int act) {
  static bool disabled = getenv("VLLM_TS_NO_GEMV") != nullptr;
  (void)out;
  return !disabled && M >= 1 && M <= kMaxGemvM && wdt == act && (act == VT_F16 || act == VT_BF16) && K % 8 == 0 &&
         x % 16 == 0 && weight % 16 == 0;
}

// out [M, N], x [M, K], weight [N, K], bias [N] or 0; all in act (f16 or bf16).
int gemv(uint64_t out, uint64_t x, uint64_t weight, uint64_t bias, int64_t M, int64_t N, int64_t K, int act) {
  if (act == VT_F16) return launch_m<__half>(out, x, weight, bias, M, N, K);
  return launch_m<__nv_bfloat16>(out, x, weight, bias, M, N, K);
}

}  // namespace vt
