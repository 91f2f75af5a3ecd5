// Paged attention, shared by the decode (split-K) and prefill (tiled) kernels.
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
  int num_seqs, num_heads, num_kv_heads, head_dim, block_size, max_blocks_per_seq;
  int64_t q_stride;
  float scale;
  int sliding_window;
  float soft_cap;
  int max_query_len, max_seq_len;
};

// Heads of one KV head handled together by a block: 1, 2, 4 or 8 (then in chunks).
inline int heads_per_block(int group) { return group >= 8 ? 8 : group >= 4 ? 4 : group >= 2 ? 2 : 1; }

int launch_decode(const AttnParams& p, int act);
int launch_prefill(const AttnParams& p, int act);

constexpr float kLog2e = 1.4426950408889634f;

// Score of a query-key dot product already multiplied by `scale`, in log2 units.
__device__ __forceinline__ float attn_score(float s, float soft_cap) {
  if (soft_cap > 0.f) s = soft_cap * tanhf(s / soft_cap);
  return s * kLog2e;
}

}  // namespace vt
