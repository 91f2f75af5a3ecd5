// vt_logprobs: log-softmax of the raw logits at the chosen tokens, their ranks,
// and the top k of each row (descending, lower id first on ties). One thread
// block per row.
//
// NOTE: the top k without sorting the row: a radix select finds the k-th largest
// logit, one ordered pass (a block-wide scan per chunk) writes the tokens above it
// and the first ties at it in id order, and only those k are sorted: by counting
// ranks in shared memory when k <= kSmemTop, else by a bitonic network run in
// place in the output rows (k = vocab: slow, but no scratch memory).
#include "sampling.cuh"

using namespace vt;
using namespace vt::smp;

namespace {

constexpr int kSmemTop = 1024;

__device__ __forceinline__ bool ranks_before(uint32_t ka, int ia, uint32_t kb, int ib) { return ka > kb || (ka == kb && ia < ib); }

// Sorts (keys, ids)[0, k) by ranks_before with the bitonic network that needs no
// direction flips (each merge starts by comparing mirrored positions); positions
// >= k stand for +inf and never move.
__device__ void bitonic_sort(uint32_t* keys, int* ids, int k) {
  int size_p = 1;
  while (size_p < k) size_p <<= 1;
  for (int size = 2; size <= size_p; size <<= 1) {
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      for (int q = threadIdx.x; q < size_p / 2; q += kThreads) {
        const int grp = q / stride, off = q % stride;
        int a, b;
        if (stride == size >> 1) {
          a = grp * size + off;
          b = grp * size + size - 1 - off;
        } else {
          a = grp * 2 * stride + off;
          b = a + stride;
        }
        if (b < k) {
          uint32_t ka = keys[a], kb = keys[b];
          int ia = ids[a], ib = ids[b];
          if (ranks_before(kb, ib, ka, ia)) {
            keys[a] = kb;
            keys[b] = ka;
            ids[a] = ib;
            ids[b] = ia;
          }
        }
      }
      __syncthreads();
    }
  }
}

// grid: one block per row; block: kThreads
//   out_lp, out_ids [n, k + 1]; out_ranks [n]
template <typename T>
__global__ void __launch_bounds__(kThreads) logprobs_kernel(float* out_lp, int* out_ids, int* out_ranks, const T* logits,
                                                           const int* chosen, int vocab, int k) {
  __shared__ uint32_t hist[kBins];
  __shared__ uint32_t top_key[kSmemTop];
  __shared__ int top_id[kSmemTop];
  const int r = blockIdx.x;
  const T* row = logits + (int64_t)r * vocab;
  const int64_t k1 = (int64_t)k + 1;
  const int c = chosen[r];
  const bool valid = c >= 0 && c < vocab;
  const uint32_t key_c = valid ? logit_key(to_f32(row[valid ? c : 0])) : 0xffffffffu;  // (address kept in the row)

  uint64_t max_key = 0, greater = 0;
  for_each_chunk(row, vocab, [&](int, const float(&v)[kPerThread], int count) {
#pragma unroll
    for (int j = 0; j < kPerThread; j++) {
      uint32_t key = logit_key(v[j]);
      if (j < count) {
        max_key = key > max_key ? key : max_key;
        greater += key > key_c;
      }
    }
  });
  max_key = block_max_u64(max_key);
  greater = block_sum_u64(greater);
  const float m = key_value((uint32_t)max_key);
  float sum = 0.f;
  if (m != -INFINITY) {
    for_each_chunk(row, vocab, [&](int, const float(&v)[kPerThread], int count) {
#pragma unroll
      for (int j = 0; j < kPerThread; j++)
        if (j < count) sum += expf(key_value(logit_key(v[j])) - m);
    });
  }
  sum = block_sum(sum);
  const float lse = m == -INFINITY ? m : m + logf(sum);
  if (threadIdx.x == 0) {
    out_lp[r * k1] = valid ? key_value(key_c) - lse : NAN;
    out_ids[r * k1] = c;
    out_ranks[r] = valid ? (int)greater + 1 : 0;
  }
  if (k == 0) return;

  uint32_t n_greater;
  const uint32_t kth = select_kth_key(row, vocab, k, hist, &n_greater);
  const uint32_t ties = (uint32_t)k - n_greater;  // ties at kth to take, lowest ids first
  const bool in_smem = k <= kSmemTop;
  uint32_t* keys = in_smem ? top_key : (uint32_t*)(out_lp + r * k1 + 1);
  int* ids = in_smem ? top_id : out_ids + r * k1 + 1;
  uint32_t done_g = 0, done_t = 0;  // tokens above kth / ties at kth in earlier chunks
  const bool vec = row_aligned(row);
  for (int ch = 0; ch < num_chunks(vocab); ch++) {
    float v[kPerThread];
    int base, count;
    load_chunk(row, vocab, vec, ch, v, &base, &count);
    uint32_t ng = 0, nt = 0;
#pragma unroll
    for (int j = 0; j < kPerThread; j++) {
      uint32_t key = logit_key(v[j]);
      ng += j < count && key > kth;
      nt += j < count && key == kth;
    }
    uint64_t chunk_total;
    const uint64_t before = block_excl_scan_u64(((uint64_t)nt << 32) | ng, &chunk_total);
    uint32_t g = done_g + (uint32_t)before, t = done_t + (uint32_t)(before >> 32);
    for (int j = 0; j < count; j++) {
      uint32_t key = logit_key(v[j]);
      if (key > kth) {
        uint32_t at = g + (t < ties ? t : ties);
        keys[at] = key;
        ids[at] = base + j;
        g++;
      } else if (key == kth) {
        if (t < ties) {
          keys[g + t] = key;
          ids[g + t] = base + j;
        }
        t++;
      }
    }
    done_g += (uint32_t)chunk_total;
    done_t += (uint32_t)(chunk_total >> 32);
  }
  __syncthreads();

  float* lp_row = out_lp + r * k1 + 1;
  int* id_row = out_ids + r * k1 + 1;
  if (in_smem) {
    for (int i = threadIdx.x; i < k; i += kThreads) {
      const uint32_t ki = top_key[i];
      const int ii = top_id[i];
      int rank = 0;
      for (int j = 0; j < k; j++) rank += ranks_before(top_key[j], top_id[j], ki, ii);
      lp_row[rank] = key_value(ki) - lse;
      id_row[rank] = ii;
    }
  } else {
    bitonic_sort(keys, ids, k);
    for (int i = threadIdx.x; i < k; i += kThreads) lp_row[i] = key_value(keys[i]) - lse;
  }
}

}  // namespace

extern "C" int vt_logprobs(uint64_t out_logprobs, uint64_t out_ids, uint64_t out_ranks, uint64_t logits, uint64_t chosen,
                           int64_t n, int64_t vocab, int64_t k, int act) {
  if (n < 0) return set_error("vt_logprobs: n = %lld rows is negative", (long long)n);
  if (n == 0) return 0;
  if (n > 2147483647LL) return set_error("vt_logprobs: %lld rows is more than one launch handles", (long long)n);
  if (vocab < 1 || vocab > kMaxVocab)
    return set_error("vt_logprobs: vocab %lld is outside [1, %lld]", (long long)vocab, (long long)kMaxVocab);
  if (k < 0 || k > vocab) return set_error("vt_logprobs: k = %lld top logprobs is outside [0, vocab = %lld]", (long long)k, (long long)vocab);
  if (!out_logprobs || !out_ids || !out_ranks || !logits || !chosen)
    return set_error("vt_logprobs: every tensor argument is required (one is 0)");
  VT_READY();
  return dispatch_float(act, "vt_logprobs", [&](auto t) {
    using T = typename decltype(t)::type;
    logprobs_kernel<T><<<(unsigned)n, kThreads, 0, g.stream>>>((float*)out_logprobs, (int*)out_ids, (int*)out_ranks,
                                                               (const T*)logits, (const int*)chosen, (int)vocab, (int)k);
    return check_launch("vt_logprobs");
  });
}
