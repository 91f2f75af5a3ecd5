// vt_attention: causal attention of a batch of sequences over the paged KV cache,
// one call for prefill, chunked prefill and decode.
// NOTE: every (sequence, head, query row) runs an online softmax (flash-style) over
// its key positions [lo, pos] in tiles of kTile positions, restarted at every
// segment of kSeg positions; the segments' states are then folded in order
// (merge_segment). Tiles and segments are aligned to absolute positions, so a
// row's result depends only on its position, its window and the cache, not on how
// many rows ran with it or how the work was cut (a decode row, a chunk and a whole
// prompt give the same bits, for any thread count).
//   Prefill rows: work items are (sequence, head, block of kRows query rows); each
//   row folds its segments as it goes.
//   Decode rows (one query row): items are (sequence, kv head, segment), so a long
//   context is split across threads; the group's query heads share every key and
//   value row load; the segment states go to a scratch and are folded afterwards.
#include <vector>

#include "attention_tile.h"

namespace vt {
namespace {

// kind 0: prefill rows [row0, row1) of `head`; kind 1: decode segment `row0` of kv
// head `head`, its states at scratch slot `row1`.
struct Item {
  int32_t kind, seq, head, row0, row1;
};

// First key position that a row at `pos` sees.
inline int64_t lo_of(const Args& a, int64_t pos) {
  return a.window > 0 && pos - a.window + 1 > 0 ? pos - a.window + 1 : int64_t(0);
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
  alignas(64) float acc[kRows][kMaxHeadDim], ACC[kRows][kMaxHeadDim];  // this segment's, all segments'
  RowState st[kRows], run[kRows];
  for (int64_t r = 0; r < nrows; r++)
    for (int64_t d = 0; d < D; d++) acc[r][d] = ACC[r][d] = 0.0f;
  const float *krow[kTile], *vrow[kTile], *knext[kTile], *vnext[kTile];
  const int64_t first = pos0 + r0, last = pos0 + r1 - 1, lo_first = lo_of(a, first);
  const int64_t t_first = lo_first / kTile * kTile;
  for (int64_t t0 = t_first; t0 <= last; t0 += kTile) {
    if (t0 % kSeg == 0 && t0 > t_first)
      for (int64_t r = 0; r < nrows; r++) {
        merge_segment(run[r], ACC[r], st[r], acc[r], D);
        st[r] = RowState();
        for (int64_t d = 0; d < D; d++) acc[r][d] = 0.0f;
      }
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
      int64_t pos = first + r, lo = lo_of(a, pos);
      if (pos < t0 || lo > t0 + kTile - 1) continue;
      int j0 = int((lo > t0 ? lo : t0) - t0), j1 = int((pos < t0 + kTile - 1 ? pos : t0 + kTile - 1) - t0);
      fold_tile<NC>(a, q + (r0 + r) * a.q_stride, krow, vrow, j0, j1, st[r], acc[r], nc, tail);
    }
  }
  for (int64_t r = 0; r < nrows; r++) {
    merge_segment(run[r], ACC[r], st[r], acc[r], D);
    vf inv = vset1(1.0f / run[r].l);
    float* o = out + (r0 + r) * out_row;
    for (int64_t d = 0; d < D; d += VL) {
      int n = D - d < VL ? int(D - d) : VL;
      vstore_n(o + d, vmul(vload_n(ACC[r] + d, n), inv), n);
    }
  }
}

// Floats of decode segment states kept per call (8 MiB).
constexpr int64_t kMaxScratch = int64_t(2) << 20;
// Heads of one group folded together over a segment.
constexpr int kGroupBlock = 8;

// One decode row (at position pos, query q for head 0) over keys [k0, k1] of one
// segment, for the query heads of kv head `kvh`: each head's state (m, l, acc[D])
// goes to part[g * (D + 2)]. The tile's key and value rows are read once for all
// the group's heads.
template <int NC>
void attend_segment(const Args& a, int seq, int kvh, int64_t k0, int64_t k1, const float* q, float* part) {
  const int64_t D = a.head_dim;
  const int nc = NC > 0 ? NC : int((D + VL - 1) / VL), tail = int(D - int64_t(nc - 1) * VL);
  const int32_t* table = a.block_tables + int64_t(seq) * a.max_blocks;
  const int64_t kv_off = kvh * D;
  alignas(64) float acc[kGroupBlock][kMaxHeadDim];
  const float *krow[kTile], *vrow[kTile], *knext[kTile], *vnext[kTile];
  for (int64_t g0 = 0; g0 < a.group; g0 += kGroupBlock) {
    const int64_t ng = a.group - g0 < kGroupBlock ? a.group - g0 : kGroupBlock;
    RowState st[kGroupBlock];
    for (int64_t g = 0; g < ng; g++)
      for (int64_t d = 0; d < D; d++) acc[g][d] = 0.0f;
    const int64_t t_first = k0 / kTile * kTile;
    for (int64_t t0 = t_first; t0 <= k1; t0 += kTile) {
      const int64_t jlo = k0 > t0 ? k0 : t0, jhi = t0 + kTile - 1 < k1 ? t0 + kTile - 1 : k1;
      for (int j = 0; j < kTile; j++) krow[j] = kZeros;
      if (t0 > t_first) {
        for (int64_t j = 0; j <= jhi - t0; j++) {
          krow[j] = knext[j];
          vrow[j] = vnext[j];
        }
      } else {
        row_pointers(a, table, kv_off, jlo, jhi, t0, krow, vrow, false);
      }
      if (t0 + kTile <= k1)
        row_pointers(a, table, kv_off, t0 + kTile, t0 + 2 * kTile - 1 < k1 ? t0 + 2 * kTile - 1 : k1, t0 + kTile, knext,
                     vnext, true);
      for (int64_t g = 0; g < ng; g++)
        fold_tile<NC>(a, q + (kvh * a.group + g0 + g) * D, krow, vrow, int(jlo - t0), int(jhi - t0), st[g], acc[g], nc, tail);
    }
    for (int64_t g = 0; g < ng; g++) {
      float* p = part + (g0 + g) * (D + 2);
      p[0] = st[g].m;
      p[1] = st[g].l;
      memcpy(p + 2, acc[g], D * sizeof(float));
    }
  }
}

void run_item(const Args& a, const Item& it, float* scratch) {
  int64_t start = a.qsl[it.seq], q_len = a.qsl[it.seq + 1] - start, ctx = a.seq_lens[it.seq];
  if (it.kind == 1) {
    const int64_t pos = ctx - 1, lo = lo_of(a, pos), s0 = int64_t(it.row0) * kSeg;
    const int64_t k0 = lo > s0 ? lo : s0, k1 = s0 + kSeg - 1 < pos ? s0 + kSeg - 1 : pos;
    const float* q = a.q + start * a.q_stride;
    float* part = scratch + int64_t(it.row1) * (a.head_dim + 2);
    switch ((a.head_dim + VL - 1) / VL) {
#define VT_CASE(N) \
  case N: return attend_segment<N>(a, it.seq, it.head, k0, k1, q, part);
      VT_CASE(1) VT_CASE(2) VT_CASE(3) VT_CASE(4) VT_CASE(5) VT_CASE(6) VT_CASE(7) VT_CASE(8)
#undef VT_CASE
      default: return attend_segment<0>(a, it.seq, it.head, k0, k1, q, part);
    }
  }
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

// A decode row's output per head: its segments' states (segments x heads slots of
// D + 2 floats from `slot`) folded in order, then normalized.
void finish_decode(const Args& a, int64_t token, int64_t nseg, const float* scratch, int64_t slot) {
  const int64_t D = a.head_dim;
  alignas(64) float ACC[kMaxHeadDim];
  for (int64_t h = 0; h < a.num_heads; h++) {
    RowState run;
    for (int64_t d = 0; d < D; d++) ACC[d] = 0.0f;
    for (int64_t s = 0; s < nseg; s++) {
      const float* p = scratch + (slot + s * a.num_heads + h) * (D + 2);
      RowState seg;
      seg.m = p[0];
      seg.l = p[1];
      merge_segment(run, ACC, seg, p + 2, D);
    }
    vf inv = vset1(1.0f / run.l);
    float* o = a.out + (token * a.num_heads + h) * D;
    for (int64_t d = 0; d < D; d += VL) {
      int n = D - d < VL ? int(D - d) : VL;
      vstore_n(o + d, vmul(vload_n(ACC + d, n), inv), n);
    }
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
  VT_CAPTURE(vt_attention(out, q, k_cache, v_cache, query_start_loc, seq_lens, block_tables, num_seqs, num_tokens, max_query_len, max_seq_len, num_heads, num_kv_heads, head_dim, block_size, max_blocks_per_seq, q_stride, scale, sliding_window, soft_cap, act));
  (void)max_query_len;
  (void)max_seq_len;
  if (check_act("vt_attention", act)) return 1;
  if (num_seqs < 0 || num_tokens < 0 || num_heads <= 0 || num_kv_heads <= 0 || block_size <= 0 || max_blocks_per_seq < 0)
    return set_error("vt_attention: bad shape num_seqs=%lld num_tokens=%lld num_heads=%lld num_kv_heads=%lld block_size=%lld",
                (long long)num_seqs, (long long)num_tokens, (long long)num_heads, (long long)num_kv_heads, (long long)block_size);
  if (head_dim <= 0 || head_dim > kMaxHeadDim)
    return set_error("vt_attention: head_dim %lld is outside the CPU library's range 1..%lld", (long long)head_dim, (long long)kMaxHeadDim);
  if (num_heads % num_kv_heads)
    return set_error("vt_attention: num_heads %lld is not a multiple of num_kv_heads %lld", (long long)num_heads, (long long)num_kv_heads);
  if (q_stride < num_heads * head_dim)
    return set_error("vt_attention: q_stride %lld is shorter than num_heads * head_dim = %lld", (long long)q_stride, (long long)(num_heads * head_dim));
  if (sliding_window < 0 || soft_cap < 0.0f) return set_error("vt_attention: sliding_window and soft_cap must be >= 0");
  if (num_seqs == 0 || num_tokens == 0) return 0;
  if (!out || !q || !k_cache || !v_cache || !query_start_loc || !seq_lens || !block_tables)
    return set_error("vt_attention: a required tensor address is null");

  Args a{ptr<float>(out), ptr<const float>(q), ptr<const float>(k_cache), ptr<const float>(v_cache),
         ptr<const int32_t>(query_start_loc), ptr<const int32_t>(seq_lens), ptr<const int32_t>(block_tables),
         num_heads, num_heads / num_kv_heads, head_dim, block_size, max_blocks_per_seq, q_stride, num_kv_heads * head_dim,
         sliding_window, scale, soft_cap};

  // Decode rows are split by segment while their states fit the scratch (a large
  // batch has work enough without splitting); unsplit, a decode row takes the
  // prefill path, which gives the same bits.
  int64_t decode_slots = 0;
  for (int64_t i = 0; i < num_seqs; i++)
    if (a.qsl[i + 1] - a.qsl[i] == 1 && a.seq_lens[i] >= 1)
      decode_slots += ((a.seq_lens[i] - 1) / kSeg - lo_of(a, a.seq_lens[i] - 1) / kSeg + 1) * num_heads;
  const bool split_decode = decode_slots * (head_dim + 2) <= kMaxScratch;
  std::vector<Item> items;
  struct Decode {
    int64_t token, nseg, slot;
  };
  std::vector<Decode> decodes;
  int64_t slots = 0;
  double total = 0;
  for (int64_t i = 0; i < num_seqs; i++) {
    int64_t start = a.qsl[i], end = a.qsl[i + 1], q_len = end - start, ctx = a.seq_lens[i];
    if (start < 0 || q_len < 0 || end > num_tokens)
      return set_error("vt_attention: query_start_loc[%lld..%lld] = %lld..%lld is not a valid range of the %lld query rows",
                  (long long)i, (long long)i + 1, (long long)start, (long long)end, (long long)num_tokens);
    if (ctx < q_len)
      return set_error("vt_attention: sequence %lld has %lld query rows but seq_lens says %lld tokens (must include this step's)",
                  (long long)i, (long long)q_len, (long long)ctx);
    if ((ctx + block_size - 1) / block_size > max_blocks_per_seq)
      return set_error("vt_attention: sequence %lld needs %lld blocks of %lld tokens, more than max_blocks_per_seq %lld", (long long)i,
                  (long long)((ctx + block_size - 1) / block_size), (long long)block_size, (long long)max_blocks_per_seq);
    for (int64_t b = 0; b < (ctx + block_size - 1) / block_size; b++)
      if (a.block_tables[i * max_blocks_per_seq + b] < 0)
        return set_error("vt_attention: block table of sequence %lld has a negative block id at %lld", (long long)i, (long long)b);
    if (q_len == 0) continue;
    if (q_len == 1 && split_decode) {
      const int64_t pos = ctx - 1, seg0 = lo_of(a, pos) / kSeg, nseg = pos / kSeg - seg0 + 1;
      decodes.push_back({start, nseg, slots});
      for (int64_t s = 0; s < nseg; s++)
        for (int64_t kvh = 0; kvh < num_kv_heads; kvh++)
          items.push_back({1, int32_t(i), int32_t(kvh), int32_t(seg0 + s), int32_t(slots + s * num_heads + kvh * a.group)});
      slots += nseg * num_heads;
      total += double(pos - lo_of(a, pos) + 1) * double(num_heads) * double(head_dim);
      continue;
    }
    // Per head, the row blocks from the last (longest) to the first: consecutive
    // items reuse one head's keys and values, and each head ends on its cheapest.
    for (int64_t h = 0; h < num_heads; h++)
      for (int64_t r0 = (q_len - 1) / kRows * kRows; r0 >= 0; r0 -= kRows) {
        int64_t r1 = r0 + kRows < q_len ? r0 + kRows : q_len;
        items.push_back({0, int32_t(i), int32_t(h), int32_t(r0), int32_t(r1)});
        total += double(r1 - r0) * double(ctx) * double(head_dim);
      }
  }
  // NOTE: a decode row's segment states are folded by finish_decode, after every item.
  static thread_local std::vector<float> scratch;
  if (scratch.size() < size_t(slots * (head_dim + 2))) scratch.resize(size_t(slots * (head_dim + 2)));
  float* sc = scratch.data();
  parallel_chunks(int64_t(items.size()), total * 4, [&](int64_t i) { run_item(a, items[i], sc); });
  if (!decodes.empty())
    parallel_for(int64_t(decodes.size()), double(num_heads) * double(head_dim) * 4, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; i++) finish_decode(a, decodes[i].token, decodes[i].nseg, sc, decodes[i].slot);
    });
  return 0;
}
