// The prefill GEMM of vt_linear: outer-product register tiles over a packed panel,
// in the lane order of the decode GEMV.
// NOTE: the GEMV (and simd.h's dot) accumulates output (m, n) in VL lanes: lane j
// sums x[m, k] * w[n, k] over k = j, j + VL, j + 2VL, ... in that order, then the
// lanes are added by a halving tree (j + VL/2, then VL/4, ... 1). This kernel
// computes the very same sums: for each lane j it runs an outer-product tile
// (kGemmRows rows x kGemmPanel outputs, x[m, k] broadcast against VL outputs of the
// panel) over k = j, j + VL, ..., keeps the VL lane partials, then adds them with
// the same tree. Same operations in the same order, so the same bits: a row gives
// the same result in a prefill batch and alone in a decode step, while the tiles
// need no horizontal reductions and load one weight vector per kGemmRows FMAs.
// The panel is packed lane-major: pk[(j * T + t) * P + p] = w[p, t * VL + j],
// zero-padded to T = ceil(K / VL) steps and P outputs.
#include <stdlib.h>

#include "gemm.h"

namespace vt {
namespace {

constexpr int kGemmRows = 8;

float* scratch(int64_t floats, int which) {
  struct Buffer {
    float* p = nullptr;
    int64_t n = 0;
    ~Buffer() { free(p); }
  };
  thread_local Buffer bufs[3];
  Buffer& b = bufs[which];
  if (b.n < floats) {
    free(b.p);
    if (posix_memalign(reinterpret_cast<void**>(&b.p), 64, floats * sizeof(float))) abort();
    b.n = floats;
  }
  return b.p;
}

// Steps (of VL values of K) per block: the x values a block broadcasts (kGemmRows
// rows x kStepBlock cache lines) stay in L1 while all VL lanes sweep them.
constexpr int64_t kStepBlock = 48;

// Steps [t0, t1) of one lane for rows [0, MB) x all panel outputs. The running lane
// partials live in `lanes` between blocks (stored and reloaded exactly); `last` adds
// the zero step that the GEMV's masked tail adds when `pad` is set.
template <int MB>
inline void lane_tile(const float* x, int64_t ldx, const float* pk, int64_t t0, int64_t t1, bool first, bool pad,
                      float* lanes) {
  constexpr int P = kGemmPanel;
  vf acc[MB][kGemmVecs];
  for (int m = 0; m < MB; m++)
    for (int v = 0; v < kGemmVecs; v++) acc[m][v] = first ? vzero() : vload(lanes + m * P + v * VL);
  for (int64_t t = t0; t < t1; t++) {
    vf w[kGemmVecs];
    for (int v = 0; v < kGemmVecs; v++) w[v] = vload(pk + t * P + v * VL);
    for (int m = 0; m < MB; m++) {
      vf b = vset1(x[m * ldx + t * VL]);
      for (int v = 0; v < kGemmVecs; v++) acc[m][v] = vfma(b, w[v], acc[m][v]);
    }
  }
  for (int m = 0; m < MB; m++)
    for (int v = 0; v < kGemmVecs; v++) vstore(lanes + m * P + v * VL, pad ? vadd(acc[m][v], vzero()) : acc[m][v]);
}

template <int MB>
void rows_tile(float* out, int64_t ldo, const float* x, int64_t K, const float* pk, int64_t nb, const float* bias,
               float* lanes) {
  constexpr int P = kGemmPanel;
  const int64_t T = (K + VL - 1) / VL, r = K % VL;
  for (int64_t t0 = 0; t0 < T; t0 += kStepBlock) {
    int64_t t1 = t0 + kStepBlock < T ? t0 + kStepBlock : T;
    for (int j = 0; j < VL; j++) {
      int64_t steps = r == 0 || j < r ? T : T - 1;  // this lane's steps in all
      int64_t end = t1 < steps ? t1 : steps;
      lane_tile<MB>(x + j, K, pk + j * T * P, t0, end, t0 == 0, t1 == T && steps < T, lanes + j * MB * P);
    }
  }
  for (int m = 0; m < MB; m++)
    for (int v = 0; v < kGemmVecs; v++) {
      int64_t p = v * VL;
      if (p >= nb) break;
      vf l[VL];
      for (int j = 0; j < VL; j++) l[j] = vload(lanes + (j * MB + m) * P + p);
      for (int w = VL / 2; w >= 1; w /= 2)
        for (int j = 0; j < w; j++) l[j] = vadd(l[j], l[j + w]);
      vf sum = bias ? vadd(l[0], vload_n(bias + p, int(nb - p < VL ? nb - p : VL))) : l[0];
      vstore_n(out + m * ldo + p, sum, int(nb - p < VL ? nb - p : VL));
    }
}

}  // namespace

#if defined(__AVX512F__)
// In place: r[j] becomes column j of the 16 x 16 block whose rows were r[0..15].
inline void transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
  for (int k = 0; k < 8; k++) {
    t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
  }
  for (int m = 0; m < 4; m++) {  // u[4m + c], 128-bit lane L: rows 4m..4m+3 at column 4L + c
    __m512d a = _mm512_castps_pd(t[4 * m]), b = _mm512_castps_pd(t[4 * m + 2]);
    __m512d c = _mm512_castps_pd(t[4 * m + 1]), d = _mm512_castps_pd(t[4 * m + 3]);
    u[4 * m] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
    u[4 * m + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
    u[4 * m + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
    u[4 * m + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
  }
  for (int c = 0; c < 4; c++) {
    __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88), v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
    __m512 v2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88), v3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
    r[c] = _mm512_shuffle_f32x4(v0, v2, 0x88);
    r[8 + c] = _mm512_shuffle_f32x4(v0, v2, 0xDD);
    r[4 + c] = _mm512_shuffle_f32x4(v1, v3, 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(v1, v3, 0xDD);
  }
}
#endif

template <class W>
const float* gemm_pack(const W* w, int64_t nb, int64_t K) {
  const int64_t T = (K + VL - 1) / VL;
  float* pk = scratch(T * VL * kGemmPanel, 2);
#if defined(__AVX512F__)
  // 16 rows x 16 values of K at a time, transposed in registers.
  for (int64_t p0 = 0; p0 < kGemmPanel; p0 += 16)
    for (int64_t t = 0; t < T; t++) {
      __m512 r[16];
      int n = K - t * VL < VL ? int(K - t * VL) : VL;
      for (int i = 0; i < 16; i++) r[i] = p0 + i < nb ? vloadw_n(w + (p0 + i) * K + t * VL, n) : vzero();
      transpose16(r);
      for (int j = 0; j < 16; j++) vstore(pk + (j * T + t) * kGemmPanel + p0, r[j]);
    }
#else
  float* row = scratch(T * VL, 1);
  for (int64_t p = 0; p < kGemmPanel; p++) {
    for (int64_t k = 0; k < T * VL; k += VL) {
      int n = K - k < VL ? int(K - k) : VL;
      vstore(row + k, p < nb ? vloadw_n(w + p * K + k, n) : vzero());
    }
    for (int64_t k = 0; k < T * VL; k++) pk[((k % VL) * T + k / VL) * kGemmPanel + p] = row[k];
  }
#endif
  return pk;
}

template const float* gemm_pack<float>(const float*, int64_t, int64_t);
template const float* gemm_pack<bf16>(const bf16*, int64_t, int64_t);
template const float* gemm_pack<f16>(const f16*, int64_t, int64_t);

void gemm_panel(float* out, int64_t ldo, const float* x, int64_t M, int64_t K, const float* pk, int64_t nb,
                const float* bias) {
  float* lanes = scratch(int64_t(VL) * kGemmRows * kGemmPanel, 0);
  for (int64_t m = 0; m < M; m += kGemmRows) {
    const float* xm = x + m * K;
    float* om = out + m * ldo;
    switch (M - m < kGemmRows ? M - m : kGemmRows) {
#define VT_CASE(R) \
  case R: rows_tile<R>(om, ldo, xm, K, pk, nb, bias, lanes); break;
      VT_CASE(1) VT_CASE(2) VT_CASE(3) VT_CASE(4) VT_CASE(5) VT_CASE(6) VT_CASE(7) VT_CASE(8)
#undef VT_CASE
    }
  }
}

}  // namespace vt
