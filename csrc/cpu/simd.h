// A small vector layer over AVX-512, AVX2+FMA or plain C++ (VL f32 lanes), so that
// every kernel is written once. Weight loads widen f32 / f16 / bf16 storage to f32.
// NOTE: every reduction over lanes goes through vhsum (one fixed halving tree), and
// each kernel accumulates an output in the same lane order whatever the batch or
// thread split, so results do not depend on how work was cut.
#pragma once
#include <math.h>

#include "common.h"

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

namespace vt {

#if defined(__AVX512F__)
#define VT_SIMD_NAME "AVX-512"
constexpr int VL = 16;
typedef __m512 vf;
inline vf vzero() { return _mm512_setzero_ps(); }
inline vf vset1(float x) { return _mm512_set1_ps(x); }
inline vf vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, vf v) { _mm512_storeu_ps(p, v); }
inline __mmask16 tail_mask(int n) { return __mmask16((1u << n) - 1u); }
inline vf vload_n(const float* p, int n) { return _mm512_maskz_loadu_ps(tail_mask(n), p); }
inline void vstore_n(float* p, vf v, int n) { _mm512_mask_storeu_ps(p, tail_mask(n), v); }
inline vf vloadw(const float* p) { return vload(p); }
inline vf vloadw(const bf16* p) {
  __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}
inline vf vloadw(const f16* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
inline vf vloadw_n(const float* p, int n) { return vload_n(p, n); }
inline vf vloadw_n(const bf16* p, int n) {
  __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(tail_mask(n), p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}
inline vf vloadw_n(const f16* p, int n) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tail_mask(n), p)); }
inline vf vadd(vf a, vf b) { return _mm512_add_ps(a, b); }
inline vf vsub(vf a, vf b) { return _mm512_sub_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm512_mul_ps(a, b); }
inline vf vdiv(vf a, vf b) { return _mm512_div_ps(a, b); }
inline vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
inline vf vmax(vf a, vf b) { return _mm512_max_ps(a, b); }
inline vf vmin(vf a, vf b) { return _mm512_min_ps(a, b); }
inline float vhsum(vf v) { return _mm512_reduce_add_ps(v); }
inline float vhmax(vf v) { return _mm512_reduce_max_ps(v); }
// e^x to ~2 ulp: Cody-Waite reduction, degree-6 polynomial; 0 below -87.3.
inline vf vexp(vf x) {
  vf xc = vmin(vmax(x, vset1(-87.3f)), vset1(88.0f));
  vf n = _mm512_roundscale_ps(vmul(xc, vset1(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  vf r = vfma(n, vset1(-0.693359375f), xc);
  r = vfma(n, vset1(2.12194440e-4f), r);
  vf p = vset1(1.9875691500e-4f);
  p = vfma(p, r, vset1(1.3981999507e-3f));
  p = vfma(p, r, vset1(8.3334519073e-3f));
  p = vfma(p, r, vset1(4.1665795894e-2f));
  p = vfma(p, r, vset1(1.6666665459e-1f));
  p = vfma(p, r, vset1(5.0000001201e-1f));
  p = vfma(vmul(p, r), r, vadd(r, vset1(1.0f)));
  vf y = _mm512_scalef_ps(p, n);
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, vset1(-87.3f), _CMP_GE_OQ), y);
}

#elif defined(__AVX2__) && defined(__FMA__)
#define VT_SIMD_NAME "AVX2+FMA"
constexpr int VL = 8;
typedef __m256 vf;
inline vf vzero() { return _mm256_setzero_ps(); }
inline vf vset1(float x) { return _mm256_set1_ps(x); }
inline vf vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, vf v) { _mm256_storeu_ps(p, v); }
inline __m256i tail_mask(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
inline vf vload_n(const float* p, int n) { return _mm256_maskload_ps(p, tail_mask(n)); }
inline void vstore_n(float* p, vf v, int n) { _mm256_maskstore_ps(p, tail_mask(n), v); }
inline vf vloadw(const float* p) { return vload(p); }
inline vf vloadw(const bf16* p) {
  __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}
#if defined(__F16C__)
inline vf vloadw(const f16* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
#else
inline vf vloadw(const f16* p) {
  alignas(32) float t[8];
  for (int i = 0; i < 8; i++) t[i] = to_f32(p[i]);
  return _mm256_load_ps(t);
}
#endif
template <class W>
inline vf vloadw_n(const W* p, int n) {
  W t[8] = {};
  memcpy(t, p, n * sizeof(W));
  return vloadw(t);
}
inline vf vadd(vf a, vf b) { return _mm256_add_ps(a, b); }
inline vf vsub(vf a, vf b) { return _mm256_sub_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm256_mul_ps(a, b); }
inline vf vdiv(vf a, vf b) { return _mm256_div_ps(a, b); }
inline vf vfma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
inline vf vmax(vf a, vf b) { return _mm256_max_ps(a, b); }
inline vf vmin(vf a, vf b) { return _mm256_min_ps(a, b); }
inline float vhsum(vf v) {
  __m128 s = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
inline float vhmax(vf v) {
  __m128 s = _mm_max_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}
inline vf vexp(vf x) {
  vf xc = vmin(vmax(x, vset1(-87.3f)), vset1(88.0f));
  vf n = _mm256_round_ps(vmul(xc, vset1(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  vf r = vfma(n, vset1(-0.693359375f), xc);
  r = vfma(n, vset1(2.12194440e-4f), r);
  vf p = vset1(1.9875691500e-4f);
  p = vfma(p, r, vset1(1.3981999507e-3f));
  p = vfma(p, r, vset1(8.3334519073e-3f));
  p = vfma(p, r, vset1(4.1665795894e-2f));
  p = vfma(p, r, vset1(1.6666665459e-1f));
  p = vfma(p, r, vset1(5.0000001201e-1f));
  p = vfma(vmul(p, r), r, vadd(r, vset1(1.0f)));
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  vf y = vmul(p, _mm256_castsi256_ps(e));
  return _mm256_and_ps(y, _mm256_cmp_ps(x, vset1(-87.3f), _CMP_GE_OQ));
}

#else
#define VT_SIMD_NAME "scalar"
constexpr int VL = 8;
struct vf {
  float v[VL];
};
#define VT_LANES(expr) \
  vf r;                \
  for (int i = 0; i < VL; i++) r.v[i] = (expr);     \
  return r
inline vf vzero() { VT_LANES(0.0f); }
inline vf vset1(float x) { VT_LANES(x); }
inline vf vload(const float* p) { VT_LANES(p[i]); }
inline void vstore(float* p, vf v) { memcpy(p, v.v, sizeof v.v); }
inline vf vload_n(const float* p, int n) { VT_LANES(i < n ? p[i] : 0.0f); }
inline void vstore_n(float* p, vf v, int n) { memcpy(p, v.v, n * sizeof(float)); }
template <class W>
inline vf vloadw(const W* p) { VT_LANES(to_f32(p[i])); }
template <class W>
inline vf vloadw_n(const W* p, int n) { VT_LANES(i < n ? to_f32(p[i]) : 0.0f); }
inline vf vadd(vf a, vf b) { VT_LANES(a.v[i] + b.v[i]); }
inline vf vsub(vf a, vf b) { VT_LANES(a.v[i] - b.v[i]); }
inline vf vmul(vf a, vf b) { VT_LANES(a.v[i] * b.v[i]); }
inline vf vdiv(vf a, vf b) { VT_LANES(a.v[i] / b.v[i]); }
inline vf vfma(vf a, vf b, vf c) { VT_LANES(fmaf(a.v[i], b.v[i], c.v[i])); }
inline vf vmax(vf a, vf b) { VT_LANES(a.v[i] > b.v[i] ? a.v[i] : b.v[i]); }
inline vf vmin(vf a, vf b) { VT_LANES(a.v[i] < b.v[i] ? a.v[i] : b.v[i]); }
inline vf vexp(vf x) { VT_LANES(x.v[i] < -87.3f ? 0.0f : expf(x.v[i] < 88.0f ? x.v[i] : 88.0f)); }
#undef VT_LANES
inline float vhsum(vf v) {
  for (int w = VL / 2; w > 0; w /= 2)
    for (int i = 0; i < w; i++) v.v[i] += v.v[i + w];
  return v.v[0];
}
inline float vhmax(vf v) {
  float m = v.v[0];
  for (int i = 1; i < VL; i++) m = v.v[i] > m ? v.v[i] : m;
  return m;
}
#endif

// tanh(x) = 1 - 2 / (e^(2x) + 1): saturates cleanly, absolute error ~1e-7.
inline vf vtanh(vf x) {
  return vsub(vset1(1.0f), vdiv(vset1(2.0f), vadd(vexp(vadd(x, x)), vset1(1.0f))));
}

// Dot product of n values (x f32, w any weight type) in the library's lane order.
template <class W>
inline float dot(const float* x, const W* w, int64_t n) {
  vf acc = vzero();
  int64_t k = 0;
  for (; k + VL <= n; k += VL) acc = vfma(vload(x + k), vloadw(w + k), acc);
  if (k < n) acc = vfma(vload_n(x + k, int(n - k)), vloadw_n(w + k, int(n - k)), acc);
  return vhsum(acc);
}

}  // namespace vt
