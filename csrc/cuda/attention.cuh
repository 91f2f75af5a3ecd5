// Paged attention, shared by the decode (split-K) and prefill (tiled) kernels:
// tensor-core kernels (attention_*_mma.cu) for bf16 / f16 with head_dim 64 or 128,
// SIMT kernels (attention_decode.cu, attention_prefill.cu) for everything else.
#pragma once
#include "common.cuh"

namespace vt {

struct AttnParams {
  void* out;            // [num_tokens, num_heads * head_dim] (act)
  const void* q;        // num_tokens rows, q_stride apart
  const void* k_cache;  // [num_blocks, block_size, num_kv_heads, head_dim]
  const void* v_cache;
  const int* query_start_loc;  // [num_seqs + 1]
  const int* seq_lens;         // [num_seqs]
  const int* block_tables;     // [num_seqs, max_blocks_per_seq]
  int num_seqs, num_tokens, num_heads, num_kv_heads, head_dim, block_size, max_blocks_per_seq;
  int64_t q_stride;
  float scale;
  int sliding_window;
  float soft_cap;
  int max_query_len, max_seq_len;
  int block_shift;  // log2(block_size) when it is a power of two, else -1
};

// How a decode call cuts each sequence's keys: `splits` partitions of `partition`
// keys; with splits > 1 each (sequence, head, partition) leaves an unnormalized
// output in part_acc [num_seqs, num_heads, splits, head_dim] and (max, sum) in
// part_ml [num_seqs, num_heads, splits, 2], merged by launch_decode_reduce.
struct DecodeSplit {
  int splits, partition;
  float* part_acc;
  float* part_ml;
};
// Picks the partitions so that base_blocks * splits reaches about target_blocks,
// each at least min_partition keys and a multiple of granule; 0 on success.
int plan_decode_split(const AttnParams& p, int64_t base_blocks, int64_t target_blocks, int min_partition, int granule, DecodeSplit& s);
int launch_decode_reduce(const AttnParams& p, const DecodeSplit& s, int act);

// A decode launch: one block per (KV head, chunk of heads_per_chunk query heads of its
// GQA group) in grid.x, per partition in grid.y, per sequence in grid.z.
struct DecodeLaunch {
  int chunks;
  DecodeSplit split;
  dim3 grid;
};
// Plans the partitions (plan_decode_split) and the grid of a decode kernel; 0 on success.
int plan_decode_launch(const AttnParams& p, int heads_per_chunk, int64_t target_blocks, int min_partition, int granule, DecodeLaunch& l);

// Heads of one KV head handled together by a block: 1, 2, 4 or 8 (then in chunks).
inline int heads_per_block(int group) { return group >= 8 ? 8 : group >= 4 ? 4 : group >= 2 ? 2 : 1; }

int launch_decode(const AttnParams& p, int act);
int launch_prefill(const AttnParams& p, int act);
// Tensor-core kernels: act VT_BF16 / VT_F16, head_dim 64 or 128 (mma_supported).
inline bool mma_supported(const AttnParams& p, int act) {
  return (act == VT_BF16 || act == VT_F16) && (p.head_dim == 64 || p.head_dim == 128);
}
int launch_decode_mma(const AttnParams& p, int act);
int launch_prefill_mma(const AttnParams& p, int act);

constexpr float kLog2e = 1.4426950408889634f;

// Score of a query-key dot product already multiplied by `scale`, in log2 units.
__device__ __forceinline__ float attn_score(float s, float soft_cap) {
  if (soft_cap > 0.f) s = soft_cap * tanhf(s / soft_cap);
  return s * kLog2e;
}

#ifdef __CUDACC__
// Keys [x, y) that partition `split` of a decode sequence reads: the sequence's last
// sliding_window keys (all when 0) cut into partitions of `partition` keys.
__device__ __forceinline__ int2 decode_key_range(const AttnParams& p, int seq, int split, int partition) {
  const int seq_len = p.seq_lens[seq];
  const int pos = seq_len - 1;
  const int lo = p.sliding_window > 0 ? max(0, pos - p.sliding_window + 1) : 0;
  const int start = lo + split * partition;
  return make_int2(start, min(seq_len, start + partition));
}

// Stores one dim d of query head h of a decode sequence: out row q0 = A / L when the
// keys are not split, else the partition's unnormalized A and its (max M, sum L) for
// launch_decode_reduce. part_acc [num_seqs, num_heads, splits, head_dim], part_ml [.., 2].
template <typename T>
__device__ __forceinline__ void store_decode_result(const AttnParams& p, int seq, int q0, int h, int d, int split, int num_splits,
                                                    float A, float M, float L, float* part_acc, float* part_ml) {
  if (num_splits == 1) {
    ((T*)p.out)[(int64_t)q0 * p.num_heads * p.head_dim + (int64_t)h * p.head_dim + d] = from_f32<T>(L > 0.f ? A / L : 0.f);
  } else {
    const int64_t slot = ((int64_t)seq * p.num_heads + h) * num_splits + split;
    part_acc[slot * p.head_dim + d] = A;
    if (d == 0) part_ml[2 * slot] = M, part_ml[2 * slot + 1] = L;
  }
}
#endif

}  // namespace vt
