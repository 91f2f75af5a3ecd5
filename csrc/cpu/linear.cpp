// vt_linear: out[M, N] = x[M, K] . weight[N, K]^T (+ bias), weights widened in the
// kernel from f32 / f16 / bf16, f32 accumulation.
// NOTE: every output is one dot product accumulated VL lanes at a time along K and
// reduced by vhsum, exactly as simd.h's dot(); register blocking only decides how
// many of these run side by side. So a row's result is the same bits whatever M,
// the blocking or the threads (batch invariance); threads take chunks of N.
//   Decode (M <= 64) is memory-bound: every weight row is streamed once (with a
//   software prefetch ahead) and used for all M rows while it sits in L1; one row
//   (batch-1 decode) has its own two-rows-at-a-time loop.
//   Prefill (gemm.cpp) packs a panel of weight rows to f32 once, then sweeps all
//   rows of x over it with outer-product tiles that keep the same lane order.
#include <stdlib.h>

#include <algorithm>
#include <vector>

#include "gemm.h"

namespace vt {
namespace {

// out[m, n] for m < MB, n < NB: x rows ldx apart, w rows K apart, out rows ldo apart.
template <int MB, int NB, class W>
inline void tile(const float* x, int64_t ldx, const W* w, int64_t K, float* out, int64_t ldo, const float* bias,
                 int64_t prefetch = 0) {
  vf acc[MB][NB];
  for (int m = 0; m < MB; m++)
    for (int n = 0; n < NB; n++) acc[m][n] = vzero();
  int64_t k = 0;
  for (; k + VL <= K; k += VL) {
    vf wv[NB];
    for (int n = 0; n < NB; n++) wv[n] = vloadw(w + n * K + k);
    if (prefetch)
      for (int n = 0; n < NB; n++) __builtin_prefetch(w + n * K + k + prefetch);
    for (int m = 0; m < MB; m++) {
      vf xv = vload(x + m * ldx + k);
      for (int n = 0; n < NB; n++) acc[m][n] = vfma(xv, wv[n], acc[m][n]);
    }
  }
  if (k < K) {
    int r = int(K - k);
    vf wv[NB];
    for (int n = 0; n < NB; n++) wv[n] = vloadw_n(w + n * K + k, r);
    for (int m = 0; m < MB; m++) {
      vf xv = vload_n(x + m * ldx + k, r);
      for (int n = 0; n < NB; n++) acc[m][n] = vfma(xv, wv[n], acc[m][n]);
    }
  }
  for (int m = 0; m < MB; m++)
    for (int n = 0; n < NB; n++) out[m * ldo + n] = bias ? vhsum(acc[m][n]) + bias[n] : vhsum(acc[m][n]);
}

// Rows [0, mb) of x against weight rows [0, nb), any mb <= MB, nb (NB-blocked).
template <int MB, int NB, class W>
void block(const float* x, int64_t ldx, int64_t mb, const W* w, int64_t nb, int64_t K, float* out, int64_t ldo,
           const float* bias, int64_t prefetch = 0) {
  int64_t n = 0;
  for (; n + NB <= nb; n += NB) {
    const float* bn = bias ? bias + n : nullptr;
    switch (mb) {
#define VT_CASE(R) \
  case R: tile<(R < MB ? R : MB), NB>(x, ldx, w + n * K, K, out + n, ldo, bn, prefetch); break;
      VT_CASE(1) VT_CASE(2) VT_CASE(3) VT_CASE(4) VT_CASE(5) VT_CASE(6) VT_CASE(7) VT_CASE(8)
#undef VT_CASE
    }
  }
  for (; n < nb; n++) {
    const float* bn = bias ? bias + n : nullptr;
    switch (mb) {
#define VT_CASE(R) \
  case R: tile<(R < MB ? R : MB), 1>(x, ldx, w + n * K, K, out + n, ldo, bn, prefetch); break;
      VT_CASE(1) VT_CASE(2) VT_CASE(3) VT_CASE(4) VT_CASE(5) VT_CASE(6) VT_CASE(7) VT_CASE(8)
#undef VT_CASE
    }
  }
}

// Up to this M, streaming the weights (GEMV) beats packing panels (measured: the
// packing pays off from about 80 rows). Both give the same bits.
constexpr int kGemvMaxRows = 64;
constexpr int64_t kChunkRows = 64;  // GEMV weight rows per claimed chunk

template <class W>
void widen(float* dst, const W* src, int64_t n) {
  int64_t i = 0;
  for (; i + VL <= n; i += VL) vstore(dst + i, vloadw(src + i));
  if (i < n) vstore_n(dst + i, vloadw_n(src + i, int(n - i)), int(n - i));
}

// One row of x against weight rows [n0, n1), two rows at a time: the two rows lie
// side by side in memory, so the pair reads one stream, prefetched linearly
// kRowPrefetch bytes ahead (measured on one core: ~12% faster than 4-row tiles
// with a per-row prefetch) into L2 only (prefetcht1): a prefetch into L1 holds one of
// the core's few L1 fill buffers until its line arrives, which caps the misses in
// flight from DRAM (measured on the 110M Llama's decode, Sapphire Rapids: GEMVs 12.75
// -> 10.5 ms a step on one thread, 7.1 -> 5.2-5.5 ms on two, with 16 KiB ahead instead
// of 8 KiB into L1; the tiny model, whose weights stay in L3, within noise).
constexpr int64_t kRowPrefetch = 16384;

template <class W>
void gemv_row(float* out, const float* x, const W* w, const float* bias, int64_t n0, int64_t n1, int64_t K) {
  int64_t n = n0;
  for (; n + 2 <= n1; n += 2) {
    const W *w0 = w + n * K, *w1 = w0 + K;
    const char* pf = reinterpret_cast<const char*>(w0) + kRowPrefetch;
    vf a0 = vzero(), a1 = vzero();
    int64_t k = 0;
    for (; k + VL <= K; k += VL, pf += 2 * VL * sizeof(W)) {
      for (int64_t b = 0; b < int64_t(2 * VL * sizeof(W)); b += 64) __builtin_prefetch(pf + b, 0, 2);
      const vf xv = vload(x + k);
      a0 = vfma(xv, vloadw(w0 + k), a0);
      a1 = vfma(xv, vloadw(w1 + k), a1);
    }
    if (k < K) {
      const int r = int(K - k);
      const vf xv = vload_n(x + k, r);
      a0 = vfma(xv, vloadw_n(w0 + k, r), a0);
      a1 = vfma(xv, vloadw_n(w1 + k, r), a1);
    }
    out[n] = bias ? vhsum(a0) + bias[n] : vhsum(a0);
    out[n + 1] = bias ? vhsum(a1) + bias[n + 1] : vhsum(a1);
  }
  if (n < n1) out[n] = bias ? dot(x, w + n * K, K) + bias[n] : dot(x, w + n * K, K);
}

template <class W>
void gemv(float* out, const float* x, const W* w, const float* bias, int64_t M, int64_t N, int64_t K) {
  if (M == 1) {
    parallel_chunks((N + kChunkRows - 1) / kChunkRows, double(N) * K, [&](int64_t c) {
      int64_t n0 = c * kChunkRows, n1 = n0 + kChunkRows < N ? n0 + kChunkRows : N;
      gemv_row(out, x, w, bias, n0, n1, K);
    });
    return;
  }
  // Software prefetch of the next 4-row tile: the hardware prefetchers alone leave
  // one core at about half its read bandwidth on this interleaved stream.
  const int64_t pf = 4 * K;
  parallel_chunks((N + kChunkRows - 1) / kChunkRows, double(M) * N * K, [&](int64_t c) {
    int64_t n0 = c * kChunkRows, n1 = n0 + kChunkRows < N ? n0 + kChunkRows : N;
    for (int64_t n = n0; n < n1; n += 16) {
      int64_t nb = n1 - n < 16 ? n1 - n : 16;
      const float* bn = bias ? bias + n : nullptr;
      for (int64_t m = 0; m < M; m += 4)
        block<4, 4>(x + m * K, K, M - m < 4 ? M - m : 4, w + n * K, nb, K, out + m * N + n, N, bn, m == 0 ? pf : 0);
    }
  });
}

template <class W>
void gemm(float* out, const float* x, const W* w, const float* bias, int64_t M, int64_t N, int64_t K) {
  parallel_chunks((N + kGemmPanel - 1) / kGemmPanel, double(M) * N * K, [&](int64_t c) {
    int64_t n = c * kGemmPanel, nb = N - n < kGemmPanel ? N - n : kGemmPanel;
    const float* pk = gemm_pack(w + n * K, nb, K);
    gemm_panel(out + n, N, x, M, K, pk, nb, bias ? bias + n : nullptr);
  });
}

template <class W>
void linear(float* out, const float* x, const W* w, const float* bias, int64_t M, int64_t N, int64_t K) {
  if (M <= kGemvMaxRows) gemv(out, x, w, bias, M, N, K);
  else gemm(out, x, w, bias, M, N, K);
}

}  // namespace
}  // namespace vt

using namespace vt;

extern "C" int vt_linear(uint64_t out, uint64_t x, uint64_t weight, uint64_t bias, int64_t M, int64_t N, int64_t K,
                         int wdt, int act) {
  VT_CAPTURE(vt_linear(out, x, weight, bias, M, N, K, wdt, act));
  if (check_act("vt_linear", act) || check_wdt("vt_linear", wdt)) return 1;
  if (M < 0 || N <= 0 || K <= 0)
    return set_error("vt_linear: bad shape M=%lld N=%lld K=%lld", (long long)M, (long long)N, (long long)K);
  if (M == 0) return 0;
  if (!out || !x || !weight) return set_error("vt_linear: a required tensor address is null");
  // The bias (N values) is widened up front: it is tiny and read once per row.
  std::vector<float> b;
  if (bias) {
    b.resize(N);
    if (wdt == VT_F32) memcpy(b.data(), ptr<const float>(bias), N * sizeof(float));
    else if (wdt == VT_BF16) widen(b.data(), ptr<const bf16>(bias), N);
    else widen(b.data(), ptr<const f16>(bias), N);
  }
  const float* pb = bias ? b.data() : nullptr;
  float* o = ptr<float>(out);
  const float* px = ptr<const float>(x);
  if (wdt == VT_F32) linear(o, px, ptr<const float>(weight), pb, M, N, K);
  else if (wdt == VT_BF16) linear(o, px, ptr<const bf16>(weight), pb, M, N, K);
  else linear(o, px, ptr<const f16>(weight), pb, M, N, K);
  return 0;
}

// vt_moe_grouped_gemm: each expert's rows through vt_linear's kernels against its
// [N, K] slice of the stacked weight. A row's result is the same bits whatever
// rows share its expert (vt_linear's batch invariance); experts without rows are skipped.
extern "C" int vt_moe_grouped_gemm(uint64_t out, uint64_t x, uint64_t weight, uint64_t expert_offsets, int64_t num_rows,
                                   int64_t num_experts, int64_t N, int64_t K, int wdt, int act) {
  VT_CAPTURE(vt_moe_grouped_gemm(out, x, weight, expert_offsets, num_rows, num_experts, N, K, wdt, act));
  if (check_act("vt_moe_grouped_gemm", act) || check_wdt("vt_moe_grouped_gemm", wdt)) return 1;
  if (num_rows < 0 || num_experts <= 0 || N <= 0 || K <= 0)
    return set_error("vt_moe_grouped_gemm: bad shape rows=%lld experts=%lld N=%lld K=%lld", (long long)num_rows,
                     (long long)num_experts, (long long)N, (long long)K);
  if (num_rows == 0) return 0;
  if (!out || !x || !weight || !expert_offsets) return set_error("vt_moe_grouped_gemm: a required tensor address is null");
  const int32_t* off = ptr<const int32_t>(expert_offsets);
  if (off[0] != 0 || off[num_experts] != num_rows)
    return set_error("vt_moe_grouped_gemm: expert_offsets span [%d, %d), expected [0, %lld)", off[0], off[num_experts],
                     (long long)num_rows);
  for (int64_t e = 0; e < num_experts; e++) {
    const int64_t r0 = off[e], rows = off[e + 1] - r0;
    if (rows < 0) return set_error("vt_moe_grouped_gemm: expert_offsets decrease at expert %lld", (long long)e);
    if (rows == 0) continue;
    float* o = ptr<float>(out) + r0 * N;
    const float* px = ptr<const float>(x) + r0 * K;
    const int64_t w0 = e * N * K;
    if (wdt == VT_F32) linear(o, px, ptr<const float>(weight) + w0, nullptr, rows, N, K);
    else if (wdt == VT_BF16) linear(o, px, ptr<const bf16>(weight) + w0, nullptr, rows, N, K);
    else linear(o, px, ptr<const f16>(weight) + w0, nullptr, rows, N, K);
  }
  return 0;
}

// vt_moe_grouped_gemm_gather on the CPU: the gather (x_rows) into a temporary, then
// vt_moe_grouped_gemm (the CUDA kernel reads through x_rows as it loads).
extern "C" int vt_moe_grouped_gemm_gather(uint64_t out, uint64_t x, uint64_t x_rows, uint64_t weight, uint64_t expert_offsets,
                                          int64_t num_rows, int64_t num_experts, int64_t N, int64_t K, int wdt, int act) {
  VT_CAPTURE(vt_moe_grouped_gemm_gather(out, x, x_rows, weight, expert_offsets, num_rows, num_experts, N, K, wdt, act));
  if (!x_rows) return vt_moe_grouped_gemm(out, x, weight, expert_offsets, num_rows, num_experts, N, K, wdt, act);
  if (check_act("vt_moe_grouped_gemm", act)) return 1;
  if (num_rows < 0 || K <= 0)
    return set_error("vt_moe_grouped_gemm: bad shape rows=%lld K=%lld", (long long)num_rows, (long long)K);
  if (num_rows == 0) return 0;
  if (!x) return set_error("vt_moe_grouped_gemm: a required tensor address is null");
  const float* src = ptr<const float>(x);
  const int32_t* rows = ptr<const int32_t>(x_rows);
  std::vector<float> gathered(size_t(num_rows * K));
  for (int64_t r = 0; r < num_rows; r++) {
    if (rows[r] < 0) return set_error("vt_moe_grouped_gemm: x_rows[%lld] = %d is negative", (long long)r, rows[r]);
    std::copy(src + int64_t(rows[r]) * K, src + (int64_t(rows[r]) + 1) * K, gathered.begin() + r * K);
  }
  return vt_moe_grouped_gemm(out, uint64_t(uintptr_t(gathered.data())), weight, expert_offsets, num_rows, num_experts, N, K, wdt, act);
}
