// Decode attention (one query token per sequence) over the paged KV cache.
// NOTE: split-K ("flash-decoding"): a sequence's key range is cut into
// partitions, one block per (sequence, KV head, head chunk, partition), so that a
// single long sequence still spreads over every SM. Each block keeps an online
// softmax per query head (running max m, sum l, unnormalized output acc); a second
// kernel merges the partitions: out = sum_s acc_s 2^(m_s - M) / sum_s l_s 2^(m_s - M).
// Inside a block, DMAX/8 lanes share one key (8 dims each, 16-byte loads) and the
// 128 threads walk 128/(DMAX/8) keys at a time; every query head of a GQA group
// reuses the key and value loaded once.
#include "attention.cuh"

using namespace vt;

namespace {

constexpr int kThreads = 128;

template <typename T, int DMAX, int G>
__global__ void __launch_bounds__(kThreads) decode_kernel(AttnParams p, int chunks, int num_splits, int partition, float* part_acc,
                                                          float* part_ml) {
  constexpr int TG = DMAX / 8, NTG = kThreads / TG;
  __shared__ float sm_m[NTG][G], sm_l[NTG][G];
  __shared__ float sm_acc[NTG][G][DMAX];

  const int seq = blockIdx.z, split = blockIdx.y;
  const int kvh = blockIdx.x / chunks, chunk = blockIdx.x % chunks;
  const int group = p.num_heads / p.num_kv_heads;
  const int h0 = kvh * group + chunk * G;
  const int ng = min(G, group - chunk * G);
  const int q0 = p.query_start_loc[seq];
  if (p.query_start_loc[seq + 1] - q0 <= 0) return;  // nothing scheduled for this sequence
  const int2 range = decode_key_range(p, seq, split, partition);
  const int start = range.x, end = range.y;

  const int tg = threadIdx.x / TG, lane = threadIdx.x % TG;
  const int d0 = lane * 8;
  const bool dvalid = d0 < p.head_dim;
  const T* kc = (const T*)p.k_cache;
  const T* vc = (const T*)p.v_cache;
  const float qscale = p.soft_cap > 0.f ? p.scale : p.scale * kLog2e;

  float q[G][8], acc[G][8], m[G], l[G];
#pragma unroll
  for (int g = 0; g < G; g++) {
    m[g] = -INFINITY;
    l[g] = 0.f;
#pragma unroll
    for (int i = 0; i < 8; i++) q[g][i] = acc[g][i] = 0.f;
    if (g < ng && dvalid) {
      load8((const T*)p.q + (int64_t)q0 * p.q_stride + (int64_t)(h0 + g) * p.head_dim + d0, q[g]);
#pragma unroll
      for (int i = 0; i < 8; i++) q[g][i] *= qscale;
    }
  }

  const int* bt = p.block_tables + (int64_t)seq * p.max_blocks_per_seq;
  // Every thread runs the same number of iterations so that the shuffles below see full warps.
  for (int t0 = start; t0 < end; t0 += NTG) {
    const int t = t0 + tg;
    const bool valid = t < end;
    float k[8], v[8];
    if (valid && dvalid) {
      const int64_t blk = bt[t / p.block_size];
      const int64_t base = ((blk * p.block_size + t % p.block_size) * p.num_kv_heads + kvh) * p.head_dim + d0;
      load8(kc + base, k);
      load8(vc + base, v);
    } else {
#pragma unroll
      for (int i = 0; i < 8; i++) k[i] = v[i] = 0.f;
    }
#pragma unroll
    for (int g = 0; g < G; g++) {
      float s = 0.f;
#pragma unroll
      for (int i = 0; i < 8; i++) s += q[g][i] * k[i];
#pragma unroll
      for (int o = TG / 2; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
      if (!valid || g >= ng) continue;
      if (p.soft_cap > 0.f) s = attn_score(s, p.soft_cap);
      const float m_new = fmaxf(m[g], s);
      const float corr = exp2f(m[g] - m_new);  // m = -inf the first time: 0
      const float e = exp2f(s - m_new);
      l[g] = l[g] * corr + e;
#pragma unroll
      for (int i = 0; i < 8; i++) acc[g][i] = acc[g][i] * corr + e * v[i];
      m[g] = m_new;
    }
  }

  // Merge the NTG token groups of the block.
#pragma unroll
  for (int g = 0; g < G; g++) {
    if (lane == 0) sm_m[tg][g] = m[g], sm_l[tg][g] = l[g];
#pragma unroll
    for (int i = 0; i < 8; i++) sm_acc[tg][g][d0 + i] = acc[g][i];
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < ng * p.head_dim; idx += kThreads) {
    const int g = idx / p.head_dim, d = idx % p.head_dim;
    float M = -INFINITY;
    for (int j = 0; j < NTG; j++) M = fmaxf(M, sm_m[j][g]);
    float L = 0.f, A = 0.f;
    if (M != -INFINITY) {
      for (int j = 0; j < NTG; j++) {
        const float w = exp2f(sm_m[j][g] - M);
        L += sm_l[j][g] * w;
        A += sm_acc[j][g][d] * w;
      }
    }
    store_decode_result<T>(p, seq, q0, h0 + g, d, split, num_splits, A, M, L, part_acc, part_ml);
  }
}

// grid (num_heads, num_seqs), 128 threads: merges the partitions of one query head.
template <typename T>
__global__ void __launch_bounds__(128) decode_reduce_kernel(AttnParams p, int num_splits, int partition, const float* part_acc,
                                                            const float* part_ml) {
  __shared__ float wt[kMaxSplits];  // each partition's weight 2^(m_s - M)
  __shared__ float red[4];
  const int h = blockIdx.x, seq = blockIdx.y;
  const int q0 = p.query_start_loc[seq];
  if (p.query_start_loc[seq + 1] - q0 <= 0) return;
  // Rounded up to the merge's 4 accumulators, so the partitions left out are only whole
  // groups of empty ones: the same bits as merging all num_splits.
  const int used = min(num_splits, (decode_used_splits(p, seq, partition, num_splits) + 3) & ~3);
  merge_decode_head<T>(p, seq, q0, h, num_splits, used, part_acc, part_ml, wt, red);
}

template <typename T, int DMAX, int G>
int run_decode(const AttnParams& p, int act) {
  DecodeLaunch l;
  if (plan_decode_launch(p, G, 4LL * g.sm_count, 64, 32, l)) return 1;
  const DecodeSplit& s = l.split;
  decode_kernel<T, DMAX, G><<<l.grid, kThreads, 0, g.stream>>>(p, l.chunks, s.splits, s.partition, s.part_acc, s.part_ml);
  if (check_launch("vt_attention (decode)")) return 1;
  return launch_decode_reduce(p, s, act);
}

template <typename T, int DMAX>
int decode_g(const AttnParams& p, int act) {
  switch (heads_per_block(p.num_heads / p.num_kv_heads)) {
    case 1: return run_decode<T, DMAX, 1>(p, act);
    case 2: return run_decode<T, DMAX, 2>(p, act);
    case 4: return run_decode<T, DMAX, 4>(p, act);
    default: return run_decode<T, DMAX, 8>(p, act);
  }
}

}  // namespace

namespace vt {

int plan_decode_split(const AttnParams& p, int64_t base_blocks, int64_t target_blocks, int min_partition, int granule, DecodeSplit& s) {
  const int kv_range = p.sliding_window > 0 ? min(p.max_seq_len, p.sliding_window) : p.max_seq_len;
  int64_t splits = 1;
  if (base_blocks < target_blocks && kv_range > min_partition) {
    const int64_t want = (target_blocks + base_blocks - 1) / base_blocks;
    const int64_t most = (kv_range + min_partition - 1) / min_partition;
    splits = want < most ? want : most;
    if (splits > kMaxSplits) splits = kMaxSplits;
  }
  const int64_t per_split = (int64_t)p.num_seqs * p.num_heads * (p.head_dim + 2) * sizeof(float);
  while (splits > 1 && per_split * splits > (int64_t)g.attn_workspace_bytes) splits--;
  int64_t partition = (kv_range + splits - 1) / splits;
  partition = (partition + granule - 1) / granule * granule;
  if (partition < 1) partition = 1;
  splits = (kv_range + partition - 1) / partition;
  if (splits < 1) splits = 1;
  if (base_blocks * splits > 2147483647LL || splits > 65535 || p.num_seqs > 65535)
    return set_error("vt_attention: decode grid too large (%d sequences)", p.num_seqs);
  s.splits = (int)splits;
  s.partition = (int)partition;
  s.part_acc = g.attn_workspace;
  s.part_ml = g.attn_workspace + (int64_t)p.num_seqs * p.num_heads * splits * p.head_dim;
  return 0;
}

int plan_decode_launch(const AttnParams& p, int heads_per_chunk, int64_t target_blocks, int min_partition, int granule, DecodeLaunch& l) {
  const int group = p.num_heads / p.num_kv_heads;
  l.chunks = (group + heads_per_chunk - 1) / heads_per_chunk;
  const int64_t base_blocks = (int64_t)p.num_seqs * p.num_kv_heads * l.chunks;
  if (plan_decode_split(p, base_blocks, target_blocks, min_partition, granule, l.split)) return 1;
  l.grid = dim3((unsigned)(p.num_kv_heads * l.chunks), (unsigned)l.split.splits, (unsigned)p.num_seqs);
  return 0;
}

int launch_decode_reduce(const AttnParams& p, const DecodeSplit& s, int act) {
  if (s.splits <= 1) return 0;
  return dispatch_float(act, "vt_attention", [&](auto a) {
    using T = typename decltype(a)::type;
    decode_reduce_kernel<T><<<dim3((unsigned)p.num_heads, (unsigned)p.num_seqs), 128, 0, g.stream>>>(p, s.splits, s.partition, s.part_acc,
                                                                                                   s.part_ml);
    return check_launch("vt_attention (decode reduce)");
  });
}

int launch_decode(const AttnParams& p, int act) {
  return dispatch_float(act, "vt_attention", [&](auto a) {
    using T = typename decltype(a)::type;
    if (p.head_dim <= 32) return decode_g<T, 32>(p, act);
    if (p.head_dim <= 64) return decode_g<T, 64>(p, act);
    if (p.head_dim <= 128) return decode_g<T, 128>(p, act);
    return decode_g<T, 256>(p, act);
  });
}

}  // namespace vt
