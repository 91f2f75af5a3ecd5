// Microbenchmark and check of the MoE grouped expert GEMM's two kernels, the skinny
// one (csrc/cuda/skinny_mma.cuh, one block per (expert, 16 features)) and the tiled
// one (csrc/cuda/moe_gemm_tiled.cuh, a block per (128 features, 64/128 rows of an
// expert)), on Qwen3-30B-A3B's expert shapes (128 experts, top 8; gate_up 1536 x 2048,
// down 2048 x 768) from 1 to 8,192 tokens with uniform random routing, beside one
// dense cuBLAS GEMM of the same FLOPs (all rows through one weight matrix: the ceiling
// a grouped GEMM can hope for). Checks that both kernels give the same bits for every
// row (the invariance the tiled kernel's NOTE claims). Standalone, on the GPU machine:
//   nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -I csrc -I benchmarks benchmarks/moe_gemm.cu -lcublas -o /tmp/moe_gemm && /tmp/moe_gemm
// Each case is a CUDA graph of launches, median of 15 replays; TFLOP/s = 2 R N K / time.
#include <random>

#include "cuda/moe_gemm_tiled.cuh"
#include "cuda_bench.cuh"

int failures = 0;

void moe_case(const char* name, int64_t N, int64_t K, int T, bf16* w, bf16* x, bf16* out_s, bf16* out_t, int* d_off) {
  const int E = 128, k = 8;
  const int64_t R = (int64_t)T * k;
  std::mt19937 rng(1234 + T);
  std::vector<int> counts(E, 0);
  for (int t = 0; t < T; t++) {
    std::vector<int> ids(E);
    for (int e = 0; e < E; e++) ids[e] = e;
    for (int j = 0; j < k; j++) {
      std::swap(ids[j], ids[j + rng() % (E - j)]);
      counts[ids[j]]++;
    }
  }
  std::vector<int> off(E + 1, 0);
  int active = 0;
  for (int e = 0; e < E; e++) off[e + 1] = off[e] + counts[e], active += counts[e] > 0;
  CK(cudaMemcpy(d_off, off.data(), off.size() * sizeof(int), cudaMemcpyHostToDevice));
  const int64_t gy = R < E ? R : E, hint = 2 * ((R + gy - 1) / gy);
  const int per = R >= 16384 ? 3 : 20;
  auto skinny = [&](int) { launch_skinny<bf16, 4>(out_s, x, w, nullptr, d_off, E, 0, N, K, gy, hint, "skinny"); };
  auto tiled = [&](int) { launch_moe_gemm_tiled<bf16>(out_t, x, w, d_off, E, R, N, K, nullptr, "tiled"); };
  auto t64 = [&](int) { launch_moe_gemm_tiled_tn<bf16, 64>(out_t, x, w, d_off, E, R, N, K, nullptr, "tiled 64"); };
  auto t128 = [&](int) { launch_moe_gemm_tiled_tn<bf16, 128>(out_t, x, w, d_off, E, R, N, K, nullptr, "tiled 128"); };
  auto dense = [&](int) { cublas_gemm(out_t, x, w, R, N, K); };
  const float ts = time_graph(skinny, per), tt = time_graph(tiled, per), td = time_graph(dense, per);
  const float t6 = time_graph(t64, per), t12 = time_graph(t128, per);
  skinny(0);
  tiled(0);
  CK(cudaDeviceSynchronize());
  const bool same = memcmp(to_host(out_s, R * N).data(), to_host(out_t, R * N).data(), R * N * sizeof(float)) == 0;
  if (!same) failures++;
  const double fl = 2.0 * R * N * K;
  printf("| %s | %d | %lld | %d | %.1f (%.0f) | %.1f (%.0f) | %.0f / %.0f | %.1f (%.0f) | %.2f | %s |\n", name, T, (long long)R, active, ts,
         fl / ts / 1e6, tt, fl / tt / 1e6, fl / t6 / 1e6, fl / t12 / 1e6, td, fl / td / 1e6, ts / tt, same ? "yes" : "**NO**");
}

int main() {
  CK(cudaSetDevice(0));
  CK(cudaStreamCreate(&g.stream));
  cublasCreate(&handle);
  cublasSetStream(handle, g.stream);
  const int64_t maxR = 8192 * 8;
  const struct { const char* name; int64_t N, K; } shapes[] = {{"gate_up 1536x2048", 1536, 2048}, {"down 2048x768", 2048, 768}};
  printf("| shape | tokens | rows | experts with rows | skinny us (TFLOP/s) | tiled us (TFLOP/s) | tiled TN=64 / 128 TFLOP/s | dense cuBLAS us (TFLOP/s) | skinny / tiled | same bits |\n");
  printf("|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& s : shapes) {
    bf16 *w, *x, *os, *ot;
    int* off;
    CK(cudaMalloc(&w, (size_t)128 * s.N * s.K * 2));
    CK(cudaMalloc(&x, (size_t)maxR * s.K * 2));
    CK(cudaMalloc(&os, (size_t)maxR * s.N * 2));
    CK(cudaMalloc(&ot, (size_t)maxR * s.N * 2));
    CK(cudaMalloc(&off, 129 * sizeof(int)));
    fill(w, (size_t)128 * s.N * s.K, 1, 0.05f);
    fill(x, (size_t)maxR * s.K, 2, 1.f);
    for (int T : {1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192}) moe_case(s.name, s.N, s.K, T, w, x, os, ot, off);
    cudaFree(w), cudaFree(x), cudaFree(os), cudaFree(ot), cudaFree(off);
  }
  printf("\n%s\n", failures ? "FAILED: the kernels' bits differ" : "all cases: same bits");
  return failures ? 1 : 0;
}
