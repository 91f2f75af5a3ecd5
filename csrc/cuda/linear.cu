// vt_linear: out[M, N] = x[M, K] W[N, K]^T (+ bias). Decode sizes (M <= 16) run the
// weight-streaming skinny kernel (skinny_mma.cuh: one reduction order at every M, so
// a row's result never depends on its batch); larger M runs cuBLASLt, with the
// bias fused in the epilogue. A plan (descriptors + chosen algorithm) is cached
// per shape and alignment. Weights whose dtype differs from the activations are
// converted once and cached until vt_free releases their allocation. Without
// cuBLASLt (or when it has no algorithm for an odd alignment) a plain tiled
// kernel computes the product.
#include <stdio.h>

#include <map>
#include <mutex>
#include <tuple>

#include "common.cuh"
#include "skinny_mma.cuh"

using namespace vt;

namespace vt {
int convert_on_stream(void* dst, int dst_dtype, const void* src, int src_dtype, uint64_t n);
}

namespace {

// The largest M that takes the skinny kernel: every decode batch up to 16 sequences.
constexpr int64_t kSkinnyMaxM = 16;

struct Plan {
  bool ok = false;
  lt_desc desc = nullptr;
  lt_layout a = nullptr, b = nullptr, d = nullptr;
  lt_algo algo;
  size_t workspace = 0;
};

using PlanKey = std::tuple<int64_t, int64_t, int64_t, int, bool, int, int, int, int>;
std::map<PlanKey, Plan> plans;

struct Converted {
  void* ptr;
  uint64_t n;
};
// (source address, target dtype) -> converted copy
std::map<std::pair<uint64_t, int>, Converted> converted;
std::mutex converted_mutex;

cudaDataType cuda_type(int dt) { return dt == VT_F32 ? CUDA_R_32F : dt == VT_F16 ? CUDA_R_16F : CUDA_R_16BF; }

int alignment(uint64_t p) {
  int a = 1;
  while (a < 256 && p % (2 * a) == 0) a *= 2;
  return a;
}

int lt_fail(const char* what, int st) {
  const char* msg = g.lt.status_string ? g.lt.status_string(st) : "";
  return set_error("vt_linear: %s failed: cuBLAS status %d %s", what, st, msg ? msg : "");
}

// Builds the plan for one shape; plan.ok stays false when cuBLASLt offers no algorithm.
int make_plan(Plan& p, int64_t M, int64_t N, int64_t K, int act, bool bias, int al_w, int al_x, int al_out, int al_bias) {
  cudaDataType t = cuda_type(act);
  int st;
  if ((st = g.lt.desc_create(&p.desc, LT_COMPUTE_32F, CUDA_R_32F)) != 0) return lt_fail("cublasLtMatmulDescCreate", st);
  int opT = LT_OP_T, opN = LT_OP_N;
  uint32_t epi = bias ? LT_EPILOGUE_BIAS : LT_EPILOGUE_DEFAULT;
  g.lt.desc_set(p.desc, LT_DESC_TRANSA, &opT, sizeof opT);
  g.lt.desc_set(p.desc, LT_DESC_TRANSB, &opN, sizeof opN);
  g.lt.desc_set(p.desc, LT_DESC_EPILOGUE, &epi, sizeof epi);
  if (bias) {
    // The heuristic reads the bias pointer's alignment; a stand-in of the same alignment will do.
    const void* fake = (const void*)(uintptr_t)al_bias;
    g.lt.desc_set(p.desc, LT_DESC_BIAS_POINTER, &fake, sizeof fake);
  }
  // Column-major view: W^T is op(A) with A = [K, N] (ld K), x^T is B = [K, M] (ld K), out^T is D = [N, M] (ld N).
  if ((st = g.lt.layout_create(&p.a, t, K, N, K)) != 0) return lt_fail("cublasLtMatrixLayoutCreate", st);
  if ((st = g.lt.layout_create(&p.b, t, K, M, K)) != 0) return lt_fail("cublasLtMatrixLayoutCreate", st);
  if ((st = g.lt.layout_create(&p.d, t, N, M, N)) != 0) return lt_fail("cublasLtMatrixLayoutCreate", st);
  lt_pref pref;
  if ((st = g.lt.pref_create(&pref)) != 0) return lt_fail("cublasLtMatmulPreferenceCreate", st);
  uint64_t ws = g.lt_workspace_bytes;
  uint32_t aw = al_w, ax = al_x, ao = al_out;
  g.lt.pref_set(pref, LT_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
  g.lt.pref_set(pref, LT_PREF_MIN_ALIGNMENT_A, &aw, sizeof aw);
  g.lt.pref_set(pref, LT_PREF_MIN_ALIGNMENT_B, &ax, sizeof ax);
  g.lt.pref_set(pref, LT_PREF_MIN_ALIGNMENT_C, &ao, sizeof ao);
  g.lt.pref_set(pref, LT_PREF_MIN_ALIGNMENT_D, &ao, sizeof ao);
  lt_heuristic result;
  int returned = 0;
  st = g.lt.heuristic(g.lt.handle, p.desc, p.a, p.b, p.d, p.d, pref, 1, &result, &returned);
  g.lt.pref_destroy(pref);
  if (st == 0 && returned > 0 && result.state == 0) {
    p.algo = result.algo;
    p.workspace = result.workspace_size;
    p.ok = true;
  }
  return 0;
}

// Fallback: 64x64 output tiles, 256 threads of 4x4 outputs, f32 accumulation.
template <typename T, typename W>
__global__ void gemm_fallback_kernel(T* out, const T* x, const W* w, const W* bias, int64_t M, int64_t N, int64_t K) {
  __shared__ float xs[16][65];
  __shared__ float ws[16][65];
  int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  int64_t m0 = (int64_t)blockIdx.y * 64, n0 = (int64_t)blockIdx.x * 64;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < K; k0 += 16) {
    for (int i = threadIdx.x; i < 1024; i += 256) {
      int r = i / 16, kk = i % 16;
      int64_t k = k0 + kk, m = m0 + r, n = n0 + r;
      xs[kk][r] = (m < M && k < K) ? to_f32(x[m * K + k]) : 0.f;
      ws[kk][r] = (n < N && k < K) ? to_f32(w[n * K + k]) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < 16; kk++) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; i++) a[i] = xs[kk][ty + 16 * i], b[i] = ws[kk][tx + 16 * i];
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) {
      int64_t m = m0 + ty + 16 * i, n = n0 + tx + 16 * j;
      if (m < M && n < N) out[m * N + n] = from_f32<T>(acc[i][j] + (bias ? to_f32(bias[n]) : 0.f));
    }
}

int gemm_fallback(uint64_t out, uint64_t x, uint64_t weight, uint64_t bias, int64_t M, int64_t N, int64_t K, int wdt, int act) {
  if ((N + 63) / 64 > 2147483647LL || (M + 63) / 64 > 65535) return set_error("vt_linear: M = %lld is too large for the fallback GEMM", (long long)M);
  return dispatch_float(act, "vt_linear", [&](auto a) {
    using T = typename decltype(a)::type;
    return dispatch_float(wdt, "vt_linear", [&](auto w) {
      using W = typename decltype(w)::type;
      dim3 grid((unsigned)((N + 63) / 64), (unsigned)((M + 63) / 64));
      gemm_fallback_kernel<T, W><<<grid, 256, 0, g.stream>>>((T*)out, (const T*)x, (const W*)weight, (const W*)bias, M, N, K);
      return check_launch("vt_linear (fallback GEMM)");
    });
  });
}

// The weight (or bias) in the activation dtype, converted on first use.
int converted_copy(uint64_t src, int src_dtype, int dst_dtype, uint64_t n, uint64_t* out) {
  std::lock_guard<std::mutex> lock(converted_mutex);
  auto key = std::make_pair(src, dst_dtype);
  auto it = converted.find(key);
  if (it != converted.end() && it->second.n == n) {
    *out = (uint64_t)(uintptr_t)it->second.ptr;
    return 0;
  }
  if (it != converted.end()) {
    cudaFreeAsync(it->second.ptr, g.stream);
    converted.erase(it);
  }
  size_t bytes = n * (dst_dtype == VT_F32 ? 4 : 2);
  void* p = nullptr;
  VT_CUDA(cudaMallocAsync(&p, bytes, g.stream));
  if (convert_on_stream(p, dst_dtype, (const void*)(uintptr_t)src, src_dtype, n) != 0) {
    cudaFreeAsync(p, g.stream);
    return 1;
  }
  converted[key] = Converted{p, n};
  *out = (uint64_t)(uintptr_t)p;
  return 0;
}

}  // namespace

namespace vt {
void forget_converted(uint64_t ptr, uint64_t bytes) {
  std::lock_guard<std::mutex> lock(converted_mutex);
  for (auto it = converted.begin(); it != converted.end();) {
    if (it->first.first >= ptr && it->first.first < ptr + (bytes ? bytes : 1)) {
      cudaFreeAsync(it->second.ptr, g.stream);
      it = converted.erase(it);
    } else {
      ++it;
    }
  }
}
}  // namespace vt

extern "C" int vt_linear(uint64_t out, uint64_t x, uint64_t weight, uint64_t bias, int64_t M, int64_t N, int64_t K, int wdt, int act) {
  if (M <= 0 || N <= 0) return 0;
  VT_READY();
  if (act != VT_F32 && act != VT_F16 && act != VT_BF16) return set_error("vt_linear: unsupported activation dtype %d", act);
  if (wdt != VT_F32 && wdt != VT_F16 && wdt != VT_BF16) return set_error("vt_linear: unsupported weight dtype %d", wdt);
  if (K <= 0) return set_error("vt_linear: K = %lld; the input width must be positive", (long long)K);
  if (!g.lt.ok) return gemm_fallback(out, x, weight, bias, M, N, K, wdt, act);
  if (wdt != act) {
    if (converted_copy(weight, wdt, act, (uint64_t)N * K, &weight) != 0) return 1;
    if (bias && converted_copy(bias, wdt, act, (uint64_t)N, &bias) != 0) return 1;
  }
  if (M <= kSkinnyMaxM && skinny_ok(act, act, K, x, weight)) {
    return dispatch_float(act, "vt_linear", [&](auto a) {
      using T = typename decltype(a)::type;
      // 16 warps a block when the N / 16 blocks leave SMs idle (launch_skinny); N alone decides.
      if constexpr (sizeof(T) == 2) {
        if ((N + kSkinnyFeatures - 1) / kSkinnyFeatures < g.sm_count)
          return launch_skinny<T, 16>((T*)out, (const T*)x, (const T*)weight, (const T*)bias, nullptr, 1, M, N, K, 1, M, "vt_linear (skinny)");
        return launch_skinny<T>((T*)out, (const T*)x, (const T*)weight, (const T*)bias, nullptr, 1, M, N, K, 1, M, "vt_linear (skinny)");
      }
      return 1;
    });
  }
  int al_w = alignment(weight), al_x = alignment(x), al_out = alignment(out), al_bias = bias ? alignment(bias) : 0;
  PlanKey key{M, N, K, act, bias != 0, al_w, al_x, al_out, al_bias};
  auto it = plans.find(key);
  if (it == plans.end()) {
    Plan p;
    if (make_plan(p, M, N, K, act, bias != 0, al_w, al_x, al_out, al_bias) != 0) return 1;
    it = plans.emplace(key, p).first;
  }
  Plan& p = it->second;
  if (!p.ok) {
    static bool warned = false;
    if (!warned) fprintf(stderr, "vllm-ts: cuBLASLt offers no algorithm for linear M=%lld N=%lld K=%lld (alignments %d/%d/%d bytes); using the slow fallback GEMM\n",
                         (long long)M, (long long)N, (long long)K, al_w, al_x, al_out);
    warned = true;
    return gemm_fallback(out, x, weight, bias, M, N, K, act, act);
  }
  if (bias) {
    const void* bp = (const void*)(uintptr_t)bias;
    g.lt.desc_set(p.desc, LT_DESC_BIAS_POINTER, &bp, sizeof bp);
  }
  float alpha = 1.f, beta = 0.f;
  int st = g.lt.matmul(g.lt.handle, p.desc, &alpha, (const void*)(uintptr_t)weight, p.a, (const void*)(uintptr_t)x, p.b, &beta,
                       (const void*)(uintptr_t)out, p.d, (void*)(uintptr_t)out, p.d, &p.algo, g.lt_workspace, g.lt_workspace_bytes,
                       g.stream);
  if (st != 0) {
    // An algorithm the heuristic offered but cannot run here (odd leading dimensions): use the fallback from now on.
    p.ok = false;
    return gemm_fallback(out, x, weight, bias, M, N, K, act, act);
  }
  return 0;
}
