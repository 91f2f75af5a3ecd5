// vt_attention: checks the arguments and picks the decode (split-K) kernel when
// every sequence has at most one query token, else the tiled prefill kernel; the
// tensor-core versions where they apply (VLLM_TS_ATTENTION=simt forces the SIMT
// kernels, for comparisons).
#include <stdlib.h>
#include <string.h>

#include "attention.cuh"

using namespace vt;

extern "C" int vt_attention(uint64_t out, uint64_t q, uint64_t k_cache, uint64_t v_cache, uint64_t query_start_loc, uint64_t seq_lens,
                            uint64_t block_tables, int64_t num_seqs, int64_t num_tokens, int64_t max_query_len, int64_t max_seq_len,
                            int64_t num_heads, int64_t num_kv_heads, int64_t head_dim, int64_t block_size, int64_t max_blocks_per_seq,
                            int64_t q_stride, float scale, int64_t sliding_window, float soft_cap, int act) {
  if (num_seqs <= 0 || num_tokens <= 0 || max_query_len <= 0) return 0;
  if (num_heads <= 0 || num_kv_heads <= 0 || num_heads % num_kv_heads != 0)
    return set_error("vt_attention: num_heads (%lld) must be a positive multiple of num_kv_heads (%lld)", (long long)num_heads,
                     (long long)num_kv_heads);
  if (head_dim <= 0 || head_dim > 256 || head_dim % 8 != 0)
    return set_error("vt_attention: head_dim %lld is not supported by the CUDA kernels (a multiple of 8, at most 256)", (long long)head_dim);
  if (block_size <= 0 || max_blocks_per_seq <= 0) return set_error("vt_attention: block_size and max_blocks_per_seq must be positive");
  if (q_stride % 8 != 0 || q % 16 != 0 || k_cache % 16 != 0 || v_cache % 16 != 0)
    return set_error("vt_attention: q, k_cache and v_cache must be 16-byte aligned and q_stride (%lld) a multiple of 8", (long long)q_stride);
  if (max_seq_len <= 0 || max_seq_len > 2147483647LL || num_seqs > 65535 || num_tokens > 2147483647LL)
    return set_error("vt_attention: max_seq_len %lld / num_seqs %lld / num_tokens %lld out of range", (long long)max_seq_len,
                     (long long)num_seqs, (long long)num_tokens);
  VT_READY();
  AttnParams p;
  p.out = (void*)(uintptr_t)out;
  p.q = (const void*)(uintptr_t)q;
  p.k_cache = (const void*)(uintptr_t)k_cache;
  p.v_cache = (const void*)(uintptr_t)v_cache;
  p.query_start_loc = (const int*)(uintptr_t)query_start_loc;
  p.seq_lens = (const int*)(uintptr_t)seq_lens;
  p.block_tables = (const int*)(uintptr_t)block_tables;
  p.num_seqs = (int)num_seqs;
  p.num_tokens = (int)num_tokens;
  p.num_heads = (int)num_heads;
  p.num_kv_heads = (int)num_kv_heads;
  p.head_dim = (int)head_dim;
  p.block_size = (int)block_size;
  p.block_shift = -1;
  for (int b = 0; b < 31; b++)
    if ((1LL << b) == block_size) p.block_shift = b;
  p.max_blocks_per_seq = (int)max_blocks_per_seq;
  p.q_stride = q_stride;
  p.scale = scale;
  p.sliding_window = sliding_window > 0 && sliding_window < 2147483647LL ? (int)sliding_window : 0;
  p.soft_cap = soft_cap > 0.f ? soft_cap : 0.f;
  p.max_query_len = (int)max_query_len;
  p.max_seq_len = (int)max_seq_len;
  static const bool force_simt = [] {
    const char* v = getenv("VLLM_TS_ATTENTION");
    return v != nullptr && strcmp(v, "simt") == 0;
  }();
  const bool mma = !force_simt && mma_supported(p, act) && out % 16 == 0;
  if (max_query_len == 1) return mma ? launch_decode_mma(p, act) : launch_decode(p, act);
  return mma ? launch_prefill_mma(p, act) : launch_prefill(p, act);
}
