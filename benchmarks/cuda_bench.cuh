// What the standalone CUDA microbenchmarks (benchmarks/skinny_gemm.cu,
// benchmarks/moe_gemm.cu) share: the runtime state the kernels' headers expect, error
// checks, a device fill with seeded uniform values, a bf16 cuBLAS GEMM to compare
// against, CUDA-graph timing (median of replays) and host copies.
#pragma once
#include <cublas_v2.h>
#include <stdarg.h>
#include <stdio.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cuda/common.cuh"

namespace vt {
Runtime g;
int set_error(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return 1;
}
int check_launch(const char* op) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return set_error("%s: %s", op, cudaGetErrorString(e));
  return 0;
}
}  // namespace vt
using namespace vt;
using bf16 = __nv_bfloat16;

#define CK(x)                                                                     \
  do {                                                                            \
    cudaError_t e_ = (x);                                                         \
    if (e_ != cudaSuccess) {                                                      \
      fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      exit(1);                                                                    \
    }                                                                             \
  } while (0)

__global__ void fill_kernel(bf16* p, size_t n, uint64_t seed, float scale) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint64_t z = (i + 1) * 0x9E3779B97F4A7C15ull ^ seed;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    p[i] = __float2bfloat16(((float)(z >> 40) / (float)(1ull << 24) * 2.f - 1.f) * scale);
  }
}
void fill(bf16* p, size_t n, uint64_t seed, float scale) { fill_kernel<<<1024, 256, 0, g.stream>>>(p, n, seed, scale); }

cublasHandle_t handle;
void cublas_gemm(bf16* out, const bf16* x, const bf16* w, int64_t M, int64_t N, int64_t K) {
  float one = 1.f, zero = 0.f;
  // column-major: out^T [N, M] = W [K, N]^T . x^T [K, M]
  cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, (int)N, (int)M, (int)K, &one, w, CUDA_R_16BF, (int)K, x, CUDA_R_16BF, (int)K, &zero, out,
               CUDA_R_16BF, (int)N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

template <typename F>
float time_graph(F&& launch, int per_graph = 20, int reps = 15) {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  launch(0);
  CK(cudaStreamSynchronize(g.stream));
  CK(cudaStreamBeginCapture(g.stream, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < per_graph; i++) launch(i);
  CK(cudaStreamEndCapture(g.stream, &graph));
  CK(cudaGraphInstantiate(&exec, graph, 0));
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  std::vector<float> ts;
  CK(cudaGraphLaunch(exec, g.stream));
  for (int r = 0; r < reps; r++) {
    cudaEventRecord(a, g.stream);
    CK(cudaGraphLaunch(exec, g.stream));
    cudaEventRecord(b, g.stream);
    CK(cudaEventSynchronize(b));
    float ms;
    cudaEventElapsedTime(&ms, a, b);
    ts.push_back(ms * 1000.f / per_graph);
  }
  std::sort(ts.begin(), ts.end());
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  return ts[ts.size() / 2];  // us per launch
}

std::vector<float> to_host(const bf16* p, size_t n) {
  std::vector<bf16> h(n);
  CK(cudaMemcpy(h.data(), p, n * 2, cudaMemcpyDeviceToHost));
  std::vector<float> f(n);
  for (size_t i = 0; i < n; i++) f[i] = __bfloat162float(h[i]);
  return f;
}

double rel_err(const std::vector<float>& a, const std::vector<float>& ref) {
  double d = 0, r = 0;
  for (size_t i = 0; i < a.size(); i++) {
    if (!std::isfinite(a[i])) return INFINITY;
    d += (a[i] - ref[i]) * (double)(a[i] - ref[i]);
    r += ref[i] * (double)ref[i];
  }
  return std::sqrt(d / r);
}

