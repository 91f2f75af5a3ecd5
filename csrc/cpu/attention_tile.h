// Private to attention.cpp: the per-tile math of the online softmax, shared by
// the prefill (row block) and decode (segment) paths so that both give the same bits.
#pragma once
#include <math.h>

#include "simd.h"

namespace vt {

constexpr int kTile = 16;
constexpr int kRows = 16;
// Key positions per softmax segment (a multiple of kTile), aligned to absolute
// multiples of kSeg.
constexpr int64_t kSeg = 128;
constexpr int64_t kMaxHeadDim = 512;

struct Args {
  float* out;
  const float* q;
  const float* k_cache;
  const float* v_cache;
  const int32_t* qsl;
  const int32_t* seq_lens;
  const int32_t* block_tables;
  int64_t num_heads, group, head_dim, block_size, max_blocks, q_stride, kv_row, window;
  float scale, soft_cap;
};

// A zero row standing in for the keys of a tile that no row of the block sees.
alignas(64) inline const float kZeros[kMaxHeadDim] = {};

// NC: VL-vectors per head row (D = (NC - 1) * VL + tail) known at compile time, so
// that a head row sits in registers; 0: any D, read at run time. Both give the same
// arithmetic.
template <int NC>
inline vf load_chunk(const float* p, int c, int nc, int tail) {
  return c == nc - 1 ? vload_n(p + c * VL, tail) : vload(p + c * VL);
}

// s[j] = q . k_j for the 16 keys of a tile, each a dot() in the library's lane order
// (the 16 accumulations interleaved, so they run in parallel). With AVX-512 the 16
// lane reductions run transposed (4 shuffle levels pairing lanes i + 8, + 4, + 2,
// + 1 exactly as vhsum does), then one permute puts the keys back in order.
template <int NC>
inline void tile_dots(const float* q, const float* const* krow, int nc, int tail, float* s) {
#if defined(__AVX512F__)
  static_assert(kTile == 16, "the transposed reduction is written for 16 keys");
  __m512 P[16];
  if constexpr (NC > 0) {
    vf qv[NC];
    for (int c = 0; c < NC; c++) qv[c] = load_chunk<NC>(q, c, NC, tail);
    for (int j = 0; j < 16; j++) {
      vf acc = vzero();
      for (int c = 0; c < NC; c++) acc = vfma(qv[c], load_chunk<NC>(krow[j], c, NC, tail), acc);
      P[j] = acc;
    }
  } else {
    for (int j = 0; j < 16; j++) P[j] = vzero();
    for (int c = 0; c < nc; c++) {
      vf qd = load_chunk<NC>(q, c, nc, tail);
      for (int j = 0; j < 16; j++) P[j] = vfma(qd, load_chunk<NC>(krow[j], c, nc, tail), P[j]);
    }
  }
  __m512 Q[8], R[4], T[2];
  for (int k = 0; k < 8; k++)
    Q[k] = _mm512_add_ps(_mm512_shuffle_f32x4(P[2 * k], P[2 * k + 1], 0x44), _mm512_shuffle_f32x4(P[2 * k], P[2 * k + 1], 0xEE));
  for (int k = 0; k < 4; k++)
    R[k] = _mm512_add_ps(_mm512_shuffle_f32x4(Q[2 * k], Q[2 * k + 1], 0x88), _mm512_shuffle_f32x4(Q[2 * k], Q[2 * k + 1], 0xDD));
  for (int k = 0; k < 2; k++)
    T[k] = _mm512_add_ps(_mm512_shuffle_ps(R[2 * k], R[2 * k + 1], 0x44), _mm512_shuffle_ps(R[2 * k], R[2 * k + 1], 0xEE));
  __m512 S = _mm512_add_ps(_mm512_shuffle_ps(T[0], T[1], 0x88), _mm512_shuffle_ps(T[0], T[1], 0xDD));
  // S[4c + e] holds key 4e + c
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  _mm512_storeu_ps(s, _mm512_permutexvar_ps(order, S));
#else
  for (int j = 0; j < kTile; j++) s[j] = dot(q, krow[j], int64_t(nc - 1) * VL + tail);
#endif
}

// e^x of one value, inline (a libm call would spill every live vector register).
inline float exp1(float x) {
  alignas(64) float t[VL];
  vstore(t, vexp(vset1(x)));
  return t[0];
}

// Online-softmax state of one query row.
struct RowState {
  float m = -INFINITY, l = 0.0f;
};

// acc[c] = acc[c] * alpha + (sum over even j in [j0, j1] of p_j v_j[c] + the same
// over odd j), vectors c in [c0, c1): two FMA chains per vector.
template <int NC>
inline void fold_values(float* acc, const float* p, const float* const* vrow, int j0, int j1, float alpha, int c0,
                        int c1, int nc, int tail) {
  constexpr int W = NC > 0 ? NC : 4;
  vf even[W], odd[W];
  for (int c = 0; c < c1 - c0; c++) even[c] = odd[c] = vzero();
  for (int j = j0; j <= j1; j += 2) {
    vf pe = vset1(p[j]), po = vset1(j + 1 <= j1 ? p[j + 1] : 0.0f);
    const float* vo = j + 1 <= j1 ? vrow[j + 1] : kZeros;
    for (int c = 0; c < c1 - c0; c++) {
      even[c] = vfma(pe, load_chunk<NC>(vrow[j], c0 + c, nc, tail), even[c]);
      odd[c] = vfma(po, load_chunk<NC>(vo, c0 + c, nc, tail), odd[c]);
    }
  }
  for (int c = 0; c < c1 - c0; c++) {
    int n = c0 + c == nc - 1 ? tail : VL;
    float* a = acc + (c0 + c) * VL;
    vstore_n(a, vfma(vload_n(a, n), vset1(alpha), vadd(even[c], odd[c])), n);
  }
}

// Folds keys [j0, j1] of a tile into one row: scores, running max and sum, acc += p V.
template <int NC>
inline void fold_tile(const Args& a, const float* q, const float* const* krow, const float* const* vrow, int j0, int j1,
                      RowState& st, float* acc, int nc, int tail) {
  alignas(64) float s[kTile];
  tile_dots<NC>(q, krow, nc, tail, s);
  for (int j = 0; j < kTile; j += VL) {
    vf x = vmul(vload(s + j), vset1(a.scale));
    if (a.soft_cap > 0.0f) x = vmul(vset1(a.soft_cap), vtanh(vmul(x, vset1(1.0f / a.soft_cap))));
    vstore(s + j, x);
  }
  if (j0 > 0 || j1 < kTile - 1)
    for (int j = 0; j < kTile; j++)
      if (j < j0 || j > j1) s[j] = -INFINITY;
  vf vmx = vload(s);
  for (int j = VL; j < kTile; j += VL) vmx = vmax(vmx, vload(s + j));
  const float tile_max = vhmax(vmx);
  float m_new = st.m > tile_max ? st.m : tile_max;
  float alpha = exp1(st.m - m_new);  // 0 on the first tile (m = -inf)
  vf sum = vzero();
  for (int j = 0; j < kTile; j += VL) {
    vf p = vexp(vsub(vload(s + j), vset1(m_new)));
    vstore(s + j, p);
    sum = vadd(sum, p);
  }
  st.l = fmaf(st.l, alpha, vhsum(sum));  // explicit: the same bits in every inlined copy
  st.m = m_new;
  if constexpr (NC > 0) {
    fold_values<NC>(acc, s, vrow, j0, j1, alpha, 0, NC, NC, tail);
  } else {
    for (int c0 = 0; c0 < nc; c0 += 4) fold_values<0>(acc, s, vrow, j0, j1, alpha, c0, c0 + 4 < nc ? c0 + 4 : nc, nc, tail);
  }
}

// Key and value rows of positions [p0, p1] (one head of each slot) into k[p - base],
// v[p - base], walking block and offset (no division per key); prefetched if asked.
inline void row_pointers(const Args& a, const int32_t* table, int64_t kv_off, int64_t p0, int64_t p1, int64_t base,
                         const float** k, const float** v, bool prefetch) {
  int64_t blk = p0 / a.block_size, off = p0 % a.block_size;
  for (int64_t p = p0; p <= p1; p++) {
    const int64_t slot = int64_t(table[blk]) * a.block_size + off;
    k[p - base] = a.k_cache + slot * a.kv_row + kv_off;
    v[p - base] = a.v_cache + slot * a.kv_row + kv_off;
    if (prefetch)
      for (int64_t b = 0; b < a.head_dim; b += 16) {
        __builtin_prefetch(k[p - base] + b);
        __builtin_prefetch(v[p - base] + b);
      }
    if (++off == a.block_size) {
      off = 0;
      blk++;
    }
  }
}

// Folds one segment's softmax state (m, l, acc[D]) into a row's running state
// (M, L, ACC[D]); a segment that saw no key is skipped. The first fold is exact
// (scale 0 for the empty running state, e^0 = 1 for the segment).
inline void merge_segment(RowState& run, float* ACC, const RowState& seg, const float* acc, int64_t D) {
  if (seg.m == -INFINITY) return;
  const float m = run.m > seg.m ? run.m : seg.m;
  const float a = exp1(run.m - m), b = exp1(seg.m - m);
  run.l = fmaf(run.l, a, seg.l * b);
  run.m = m;
  const vf va = vset1(a), vb = vset1(b);
  for (int64_t d = 0; d < D; d += VL) {
    int n = D - d < VL ? int(D - d) : VL;
    vstore_n(ACC + d, vfma(vload_n(ACC + d, n), va, vmul(vload_n(acc + d, n), vb)), n);
  }
}

}  // namespace vt
