// Microbenchmark and check of the skinny decode GEMM (csrc/cuda/skinny_mma.cuh)
// against cuBLAS, on the decode shapes of Llama-3-8B and Qwen3-30B-A3B, and of the
// MoE expert path (one block per expert with rows). Standalone: build and run on the
// GPU machine with
//   nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -I csrc benchmarks/skinny_gemm.cu -lcublas -o /tmp/skinny && /tmp/skinny
// Weights rotate over several copies (> L2) so every launch streams from HBM; each
// case is a CUDA graph of 20 launches, median of 15 replays. Checks: relative error
// against cuBLAS (f32 accumulation), and bit-identity of row 0 between M = 1 and
// every other M (batch invariance), and of a MoE row alone vs among other rows.
#include <random>

#include "cuda/skinny_mma.cuh"
#include "cuda_bench.cuh"

// The kernel variants timed beside the dispatched one (launch_skinny): U k-blocks a
// stage, one n-tile, with or without a second stage in flight, NW warps a block (NW
// other than 8 sums in another order: its bits are not compared with the dispatched).
using Launch = void (*)(bf16*, const bf16*, const bf16*, const int*, int, int64_t, int64_t, int64_t, int64_t);
template <int U, bool PIPE, int NW = kSkinnyWarps>
void variant(bf16* out, const bf16* x, const bf16* w, const int* off, int E, int64_t M, int64_t N, int64_t K, int64_t gy) {
  const dim3 grid((unsigned)((N + kSkinnyFeatures - 1) / kSkinnyFeatures), (unsigned)gy);
  if (M <= 8) skinny_mma_kernel<bf16, U, 1, PIPE, NW><<<grid, 32 * NW, 0, g.stream>>>(out, x, w, nullptr, off, E, M, N, K, nullptr);
  else skinny_mma_kernel<bf16, U, 2, PIPE, NW><<<grid, 32 * NW, 0, g.stream>>>(out, x, w, nullptr, off, E, M, N, K, nullptr);
}
struct Variant {
  const char* name;
  Launch fn;
  bool same_order;
};
const Variant variants[] = {{"U2 pipe", variant<2, true>, true},         {"U4", variant<4, false>, true},
                            {"U4 16w", variant<4, false, 16>, false},    {"U2 pipe 16w", variant<2, true, 16>, false},
                            {"U2 16w", variant<2, false, 16>, false},    {"U4 4w", variant<4, false, 4>, false}};

int failures = 0;

void dense_case(const char* name, int64_t N, int64_t K, FILE* log) {
  const size_t wn = (size_t)N * K;
  const int copies = (int)std::max<size_t>(2, (size_t)(400ull << 20) / (wn * 2) + 1);  // > 400 MB of weights in rotation
  bf16 *w, *x, *out, *ref;
  CK(cudaMalloc(&w, wn * 2 * copies));
  CK(cudaMalloc(&x, 16 * K * 2));
  CK(cudaMalloc(&out, 16 * N * 2));
  CK(cudaMalloc(&ref, 16 * N * 2));
  fill(w, wn * copies, 1234 + N, 0.05f);
  fill(x, 16 * K, 99 + K, 1.f);
  const double bytes = wn * 2.0;
  std::vector<float> row0;
  for (int64_t M : {1, 2, 4, 8, 16}) {
    CK(cudaMemset(out, 0xff, 16 * N * 2));  // poison: NaN
    launch_skinny<bf16>(out, x, w, nullptr, nullptr, 1, M, N, K, 1, M, "skinny");
    cublas_gemm(ref, x, w, M, N, K);
    CK(cudaStreamSynchronize(g.stream));
    auto o = to_host(out, M * N), r = to_host(ref, M * N);
    const double err = rel_err(o, r);
    bool inv = true;
    if (M == 1) row0 = o;
    else inv = memcmp(row0.data(), o.data(), N * sizeof(float)) == 0;
    if (!(err < 1e-2) || !inv) failures++;
    const float ts = time_graph([&](int i) { launch_skinny<bf16>(out, x, w + (size_t)(i % copies) * wn, nullptr, nullptr, 1, M, N, K, 1, M, "skinny"); });
    const float tc = time_graph([&](int i) { cublas_gemm(ref, x, w + (size_t)(i % copies) * wn, M, N, K); });
    fprintf(log, "| %s %lldx%lld | %lld | %.2f us %.2f TB/s | %.2f us %.2f TB/s | %.1e | %s |", name, (long long)N, (long long)K, (long long)M, ts,
            bytes / ts / 1e6, tc, bytes / tc / 1e6, err, inv ? "yes" : "NO");
    for (const Variant& v : variants) {
      if (M != 1 && M != 8 && M != 16) break;
      CK(cudaMemset(out, 0xff, 16 * N * 2));
      v.fn(out, x, w, nullptr, 1, M, N, K, 1);
      CK(cudaStreamSynchronize(g.stream));
      const bool same = !v.same_order || memcmp(to_host(out, N).data(), row0.data(), N * sizeof(float)) == 0;
      if (!same) failures++;
      const float tv = time_graph([&](int i) { v.fn(out, x, w + (size_t)(i % copies) * wn, nullptr, 1, M, N, K, 1); });
      fprintf(log, " %.2f TB/s%s |", bytes / tv / 1e6, same ? "" : " (bits differ)");
    }
    fprintf(log, "\n");
  }
  cudaFree(w);
  cudaFree(x);
  cudaFree(out);
  cudaFree(ref);
}

// Qwen3-30B-A3B experts: E = 128, top-8; tokens T; each token 8 distinct random experts.
void moe_case(int64_t T, int64_t N, int64_t K, const char* name, FILE* log) {
  const int E = 128, k = 8;
  const int64_t P = T * k;
  std::mt19937 rng(7 + T);
  std::vector<int> ids(P);
  for (int64_t t = 0; t < T; t++) {
    std::vector<int> perm(E);
    for (int e = 0; e < E; e++) perm[e] = e;
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int j = 0; j < k; j++) ids[t * k + j] = perm[j];
  }
  std::vector<int> off(E + 1, 0);
  for (int id : ids) off[id + 1]++;
  for (int e = 0; e < E; e++) off[e + 1] += off[e];
  int active = 0;
  for (int e = 0; e < E; e++) active += off[e + 1] > off[e];
  const size_t wn = (size_t)E * N * K;
  bf16 *w, *x, *out, *ref;
  int* d_off;
  CK(cudaMalloc(&w, wn * 2));
  CK(cudaMalloc(&x, P * K * 2));
  CK(cudaMalloc(&out, P * N * 2));
  CK(cudaMalloc(&ref, P * N * 2));
  CK(cudaMalloc(&d_off, (E + 1) * 4));
  fill(w, wn, 4321 + N, 0.05f);
  fill(x, P * K, 77 + K, 1.f);
  CK(cudaMemcpy(d_off, off.data(), (E + 1) * 4, cudaMemcpyHostToDevice));
  const int64_t gy = std::min<int64_t>(P, E), hint = 2 * ((P + gy - 1) / gy);
  CK(cudaMemset(out, 0xff, P * N * 2));
  launch_skinny<bf16>(out, x, w, nullptr, d_off, E, 0, N, K, gy, hint, "moe");
  for (int e = 0; e < E; e++)
    if (off[e + 1] > off[e]) cublas_gemm(ref + (size_t)off[e] * N, x + (size_t)off[e] * K, w + (size_t)e * N * K, off[e + 1] - off[e], N, K);
  CK(cudaStreamSynchronize(g.stream));
  auto o = to_host(out, P * N), r = to_host(ref, P * N);
  const double err = rel_err(o, r);
  // The last row of the busiest expert, alone (offsets with just that row).
  int eb = 0;
  for (int e = 0; e < E; e++)
    if (off[e + 1] - off[e] > off[eb + 1] - off[eb]) eb = e;
  const int row = off[eb + 1] - 1;
  std::vector<int> off1(E + 1);
  for (int e = 0; e <= E; e++) off1[e] = e <= eb ? row : row + 1;
  CK(cudaMemcpy(d_off, off1.data(), (E + 1) * 4, cudaMemcpyHostToDevice));
  CK(cudaMemset(out, 0xff, P * N * 2));
  launch_skinny<bf16>(out, x, w, nullptr, d_off, E, 0, N, K, 1, 2, "moe");
  CK(cudaStreamSynchronize(g.stream));
  auto o1 = to_host(out + (size_t)row * N, N);
  const bool inv = memcmp(o1.data(), o.data() + (size_t)row * N, N * sizeof(float)) == 0;
  CK(cudaMemcpy(d_off, off.data(), (E + 1) * 4, cudaMemcpyHostToDevice));
  if (!(err < 1e-2) || !inv) failures++;
  const float ts = time_graph([&](int) { launch_skinny<bf16>(out, x, w, nullptr, d_off, E, 0, N, K, gy, hint, "moe"); });
  const double bytes = (double)active * N * K * 2;
  fprintf(log, "| moe %s T=%lld (%d experts, busiest %d rows) | %.2f us %.2f TB/s | %.1e | %s |", name, (long long)T, active, off[eb + 1] - off[eb], ts,
          bytes / ts / 1e6, err, inv ? "yes" : "NO");
  for (const Variant& v : variants) {
    if (T > 8) break;
    const float tv = time_graph([&](int) { v.fn(out, x, w, d_off, E, 0, N, K, gy); });
    fprintf(log, " %.2f TB/s |", bytes / tv / 1e6);
  }
  fprintf(log, "\n");
  cudaFree(w);
  cudaFree(x);
  cudaFree(out);
  cudaFree(ref);
  cudaFree(d_off);
}

void copy_ceiling(FILE* log) {
  size_t n = 4ull << 30;
  void *a, *b;
  CK(cudaMalloc(&a, n));
  CK(cudaMalloc(&b, n));
  CK(cudaMemset(a, 1, n));
  const float t = time_graph([&](int) { cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice, g.stream); }, 4, 5);
  fprintf(log, "device copy 4 GiB: %.1f us, %.2f TB/s (read + write)\n\n", t, 2.0 * n / t / 1e6);
  cudaFree(a);
  cudaFree(b);
}

int main(int argc, char** argv) {
  CK(cudaStreamCreate(&g.stream));
  cublasCreate(&handle);
  cublasSetStream(handle, g.stream);
  FILE* log = argc > 1 ? fopen(argv[1], "w") : stdout;
  if (argc <= 2) copy_ceiling(log);
  fprintf(log, "| shape N x K | M | skinny | cuBLAS | rel err vs cuBLAS | row 0 = M=1 bits |");
  for (const Variant& v : variants) fprintf(log, " %s |", v.name);
  fprintf(log, "\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  dense_case("llama qkv", 6144, 4096, log);
  dense_case("llama o", 4096, 4096, log);
  dense_case("llama gate_up", 28672, 4096, log);
  dense_case("llama down", 4096, 14336, log);
  if (argc > 2) return failures ? 2 : 0;  // the Llama shapes only
  dense_case("llama lm_head", 128256, 4096, log);
  dense_case("qwen3moe qkv", 5120, 2048, log);
  dense_case("qwen3moe o", 2048, 4096, log);
  dense_case("qwen3moe router", 128, 2048, log);
  dense_case("qwen3moe lm_head", 151936, 2048, log);
  fprintf(log, "\n| MoE case | skinny (bytes = active experts' weights) | rel err | row alone = in batch |");
  for (const Variant& v : variants) fprintf(log, " %s |", v.name);
  fprintf(log, "\n|---|---|---|---|---|---|---|---|\n");
  for (int64_t T : {1, 8, 1024}) {
    moe_case(T, 1536, 2048, "gate_up 1536x2048", log);
    moe_case(T, 2048, 768, "down 2048x768", log);
  }
  copy_ceiling(log);
  fprintf(log, "\nfailures: %d\n", failures);
  if (log != stdout) fclose(log);
  return failures ? 2 : 0;
}
