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
constexpr int kMaxSplits = 4096;

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

// How many of a decode sequence's num_splits partitions hold keys: the first
// ceil(keys / partition) (decode_key_range). The others merge as nothing (max -inf,
// weight 0, adding +0), so a merge may skip them (a CUDA graph sizes the split for
// max_model_len: 64 partitions of 64 keys for Qwen3-30B-A3B at 4,096, 2 of them used
// at a 70-token context).
__device__ __forceinline__ int decode_used_splits(const AttnParams& p, int seq, int partition, int num_splits) {
  const int seq_len = p.seq_lens[seq];
  const int lo = p.sliding_window > 0 ? max(0, seq_len - p.sliding_window) : 0;
  return min(num_splits, max(0, (seq_len - lo + partition - 1) / partition));
}

// Merges the partitions of query head h of decode sequence seq (the first `used` of
// num_splits) into its output row q0, 128 threads (launch_decode_reduce's kernel).
// wt: num_splits floats of shared memory; red: 4.
// NOTE: a merge inside the decode kernel (the last block of each column to finish,
// found with an arrival counter) was tried on 2026-12-02 and measured slower on the
// H200 (Qwen3-30B-A3B 13.3 -> 16.7 us a layer, Llama-3-8B 12.6 -> 16.2): one block
// walks all its heads' partials in a chain of L2 round trips, where this kernel
// spreads them over num_heads x num_seqs blocks.
template <typename T>
__device__ __forceinline__ void merge_decode_head(const AttnParams& p, int seq, int q0, int h, int num_splits, int used, const float* part_acc,
                                                  const float* part_ml, float* wt, float* red) {
  const int tid = threadIdx.x;
  const int64_t slot0 = ((int64_t)seq * p.num_heads + h) * num_splits;
  num_splits = used;
  float M = -INFINITY;
  for (int s = tid; s < num_splits; s += 128) M = fmaxf(M, __ldcg(part_ml + 2 * (slot0 + s)));
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, o));
  if (tid % 32 == 0) red[tid / 32] = M;
  __syncthreads();
  M = fmaxf(fmaxf(red[0], red[1]), fmaxf(red[2], red[3]));
  float L = 0.f;
  for (int s = tid; s < num_splits; s += 128) {
    const float w = M == -INFINITY ? 0.f : exp2f(__ldcg(part_ml + 2 * (slot0 + s)) - M);
    wt[s] = w;
    L += __ldcg(part_ml + 2 * (slot0 + s) + 1) * w;
  }
  L = block_sum(L);  // its barriers also publish wt
  const float inv = L > 0.f ? 1.f / L : 0.f;
  const float* acc = part_acc + slot0 * p.head_dim;
  for (int d = tid; d < p.head_dim; d += 128) {
    float A0 = 0.f, A1 = 0.f, A2 = 0.f, A3 = 0.f;
    int s = 0;
    for (; s + 4 <= num_splits; s += 4) {
      A0 += __ldcg(acc + (int64_t)s * p.head_dim + d) * wt[s];
      A1 += __ldcg(acc + (int64_t)(s + 1) * p.head_dim + d) * wt[s + 1];
      A2 += __ldcg(acc + (int64_t)(s + 2) * p.head_dim + d) * wt[s + 2];
      A3 += __ldcg(acc + (int64_t)(s + 3) * p.head_dim + d) * wt[s + 3];
    }
    for (; s < num_splits; s++) A0 += __ldcg(acc + (int64_t)s * p.head_dim + d) * wt[s];
    ((T*)p.out)[(int64_t)q0 * p.num_heads * p.head_dim + (int64_t)h * p.head_dim + d] = from_f32<T>((A0 + A1 + A2 + A3) * inv);
  }
  __syncthreads();  // wt and red are free again
}
#endif

}  // namespace vt
