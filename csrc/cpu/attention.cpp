// vt_attention: causal attention of a batch of sequences over the paged KV cache,
// one call for prefill, chunked prefill and decode.
// NOTE: every (sequence, head, query row) runs its own online softmax (flash-style)
// over its key positions [lo, pos] in tiles of kTile positions aligned to absolute
// multiples of kTile. A row's result therefore depends only on its position, its
// window and the cache, not on how many rows ran with it (a decode row, a chunk
// and a whole prompt give the same bits). Work items are (sequence, head, block
// of kRows query rows), claimed by the threads in order.
#include <math.h>

#include <vector>

#include "simd.h"

namespace vt {
namespace {

constexpr int kTile = 16;
constexpr int kRows = 16;
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

struct Item {
  int32_t seq, head, row0, row1;
};

// A zero row standing in for the keys of a tile that no row of the block sees.
alignas(64) const float kZeros[kMaxHeadDim] = {};

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
  for (int j = 0; j < kTile; j++)
    if (j < j0 || j > j1) s[j] = -INFINITY;
  vf vmx = vload(s);
  for (int j = VL; j < kTile; j += VL) vmx = vmax(vmx, vload(s + j));
  const float tile_max = vhmax(vmx);
  float m_new = st.m > tile_max ? st.m : tile_max;
  float alpha = expf(st.m - m_new);  // 0 on the first tile (m = -inf)
  vf sum = vzero();
  for (int j = 0; j < kTile; j += VL) {
    vf p = vexp(vsub(vload(s + j), vset1(m_new)));
    vstore(s + j, p);
    sum = vadd(sum, p);
  }
  st.l = st.l * alpha + vhsum(sum);
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

// Query rows [r0, r1) of one sequence and head, tile by tile: the tile's key and
// value rows are looked up once and stay in L1 while every row that sees them folds
// them in (the next tile's rows are prefetched meanwhile). Row r sits at position
// pos0 + r and sees keys [lo(r), pos0 + r].
template <int NC>
void attend_rows(const Args& a, int seq, int head, int64_t pos0, int64_t r0, int64_t r1, const float* q, float* out) {
  const int64_t D = a.head_dim, nrows = r1 - r0, out_row = a.num_heads * D;
  const int nc = NC > 0 ? NC : int((D + VL - 1) / VL), tail = int(D - int64_t(nc - 1) * VL);
  const int32_t* table = a.block_tables + int64_t(seq) * a.max_blocks;
  const int64_t kv_off = (head / a.group) * D;
  auto lo_of = [&](int64_t pos) { return a.window > 0 && pos - a.window + 1 > 0 ? pos - a.window + 1 : int64_t(0); };
  alignas(64) float acc[kRows][kMaxHeadDim];
  RowState st[kRows];
  for (int64_t r = 0; r < nrows; r++)
    for (int64_t d = 0; d < D; d++) acc[r][d] = 0.0f;
  const float *krow[kTile], *vrow[kTile], *knext[kTile], *vnext[kTile];
  const int64_t first = pos0 + r0, last = pos0 + r1 - 1, lo_first = lo_of(first);
  for (int64_t t0 = lo_first / kTile * kTile; t0 <= last; t0 += kTile) {
    const int64_t jlo = lo_first > t0 ? lo_first : t0, jhi = t0 + kTile - 1 < last ? t0 + kTile - 1 : last;
    for (int j = 0; j < kTile; j++) krow[j] = kZeros;
    if (jlo == t0 && t0 > lo_first) {  // computed (and prefetched) with the previous tile
      for (int64_t j = 0; j <= jhi - t0; j++) {
        krow[j] = knext[j];
        vrow[j] = vnext[j];
      }
    } else {
      row_pointers(a, table, kv_off, jlo, jhi, t0, krow, vrow, false);
    }
    if (t0 + kTile <= last)
      row_pointers(a, table, kv_off, t0 + kTile, t0 + 2 * kTile - 1 < last ? t0 + 2 * kTile - 1 : last, t0 + kTile,
                   knext, vnext, true);
    for (int64_t r = 0; r < nrows; r++) {
      int64_t pos = first + r, lo = lo_of(pos);
      if (pos < t0 || lo > t0 + kTile - 1) continue;
      int j0 = int((lo > t0 ? lo : t0) - t0), j1 = int((pos < t0 + kTile - 1 ? pos : t0 + kTile - 1) - t0);
      fold_tile<NC>(a, q + (r0 + r) * a.q_stride, krow, vrow, j0, j1, st[r], acc[r], nc, tail);
    }
  }
  for (int64_t r = 0; r < nrows; r++) {
    vf inv = vset1(1.0f / st[r].l);
    float* o = out + (r0 + r) * out_row;
    for (int64_t d = 0; d < D; d += VL) {
      int n = D - d < VL ? int(D - d) : VL;
      vstore_n(o + d, vmul(vload_n(acc[r] + d, n), inv), n);
    }
  }
}

void run_item(const Args& a, const Item& it) {
  int64_t start = a.qsl[it.seq], q_len = a.qsl[it.seq + 1] - start, ctx = a.seq_lens[it.seq];
  const float* q = a.q + start * a.q_stride + it.head * a.head_dim;
  float* out = a.out + start * a.num_heads * a.head_dim + it.head * a.head_dim;
  switch ((a.head_dim + VL - 1) / VL) {
#define VT_CASE(N) \
  case N: return attend_rows<N>(a, it.seq, it.head, ctx - q_len, it.row0, it.row1, q, out);
    VT_CASE(1) VT_CASE(2) VT_CASE(3) VT_CASE(4) VT_CASE(5) VT_CASE(6) VT_CASE(7) VT_CASE(8)
    VT_CASE(9) VT_CASE(10) VT_CASE(11) VT_CASE(12) VT_CASE(13) VT_CASE(14) VT_CASE(15) VT_CASE(16)
#undef VT_CASE
    default: return attend_rows<0>(a, it.seq, it.head, ctx - q_len, it.row0, it.row1, q, out);
  }
}

}  // namespace
}  // namespace vt

using namespace vt;

extern "C" int vt_attention(uint64_t out, uint64_t q, uint64_t k_cache, uint64_t v_cache, uint64_t query_start_loc,
                            uint64_t seq_lens, uint64_t block_tables, int64_t num_seqs, int64_t num_tokens,
                            int64_t max_query_len, int64_t max_seq_len, int64_t num_heads, int64_t num_kv_heads,
                            int64_t head_dim, int64_t block_size, int64_t max_blocks_per_seq, int64_t q_stride,
                            float scale, int64_t sliding_window, float soft_cap, int act) {
  (void)max_query_len;
  (void)max_seq_len;
  if (check_act("vt_attention", act)) return 1;
  if (num_seqs < 0 || num_tokens < 0 || num_heads <= 0 || num_kv_heads <= 0 || block_size <= 0 || max_blocks_per_seq < 0)
    return fail("vt_attention: bad shape num_seqs=%lld num_tokens=%lld num_heads=%lld num_kv_heads=%lld block_size=%lld",
                (long long)num_seqs, (long long)num_tokens, (long long)num_heads, (long long)num_kv_heads, (long long)block_size);
  if (head_dim <= 0 || head_dim > kMaxHeadDim)
    return fail("vt_attention: head_dim %lld is outside the CPU library's range 1..%lld", (long long)head_dim, (long long)kMaxHeadDim);
  if (num_heads % num_kv_heads)
    return fail("vt_attention: num_heads %lld is not a multiple of num_kv_heads %lld", (long long)num_heads, (long long)num_kv_heads);
  if (q_stride < num_heads * head_dim)
    return fail("vt_attention: q_stride %lld is shorter than num_heads * head_dim = %lld", (long long)q_stride, (long long)(num_heads * head_dim));
  if (sliding_window < 0 || soft_cap < 0.0f) return fail("vt_attention: sliding_window and soft_cap must be >= 0");
  if (num_seqs == 0 || num_tokens == 0) return 0;
  if (!out || !q || !k_cache || !v_cache || !query_start_loc || !seq_lens || !block_tables)
    return fail("vt_attention: a required tensor address is null");

  Args a{ptr<float>(out), ptr<const float>(q), ptr<const float>(k_cache), ptr<const float>(v_cache),
         ptr<const int32_t>(query_start_loc), ptr<const int32_t>(seq_lens), ptr<const int32_t>(block_tables),
         num_heads, num_heads / num_kv_heads, head_dim, block_size, max_blocks_per_seq, q_stride, num_kv_heads * head_dim,
         sliding_window, scale, soft_cap};

  std::vector<Item> items;
  double total = 0;
  for (int64_t i = 0; i < num_seqs; i++) {
    int64_t start = a.qsl[i], end = a.qsl[i + 1], q_len = end - start, ctx = a.seq_lens[i];
    if (start < 0 || q_len < 0 || end > num_tokens)
      return fail("vt_attention: query_start_loc[%lld..%lld] = %lld..%lld is not a valid range of the %lld query rows",
                  (long long)i, (long long)i + 1, (long long)start, (long long)end, (long long)num_tokens);
    if (ctx < q_len)
      return fail("vt_attention: sequence %lld has %lld query rows but seq_lens says %lld tokens (must include this step's)",
                  (long long)i, (long long)q_len, (long long)ctx);
    if ((ctx + block_size - 1) / block_size > max_blocks_per_seq)
      return fail("vt_attention: sequence %lld needs %lld blocks of %lld tokens, more than max_blocks_per_seq %lld", (long long)i,
                  (long long)((ctx + block_size - 1) / block_size), (long long)block_size, (long long)max_blocks_per_seq);
    for (int64_t b = 0; b < (ctx + block_size - 1) / block_size; b++)
      if (a.block_tables[i * max_blocks_per_seq + b] < 0)
        return fail("vt_attention: block table of sequence %lld has a negative block id at %lld", (long long)i, (long long)b);
    if (q_len == 0) continue;
    // Per head, the row blocks from the last (longest) to the first: consecutive
    // items reuse one head's keys and values, and each head ends on its cheapest.
    for (int64_t h = 0; h < num_heads; h++)
      for (int64_t r0 = (q_len - 1) / kRows * kRows; r0 >= 0; r0 -= kRows) {
        int64_t r1 = r0 + kRows < q_len ? r0 + kRows : q_len;
        items.push_back({int32_t(i), int32_t(h), int32_t(r0), int32_t(r1)});
        total += double(r1 - r0) * double(ctx) * double(head_dim);
      }
  }
  parallel_chunks(int64_t(items.size()), total * 4, [&](int64_t i) { run_item(a, items[i]); });
  return 0;
}
