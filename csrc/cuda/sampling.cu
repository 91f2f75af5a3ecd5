// vt_sample: one token per row of logits, one thread block per row. Greedy rows
// take the argmax; random rows follow csrc/sampling_math.h's fixed-point masses so
// that the result equals the CPU twin's (csrc/cpu/sampling.cpp) bit for bit.
//
// NOTE: no sort of the vocabulary. Top-k is a radix select of the k-th largest
// logit (11-bit digit counts, two or three passes). Top-p finds the smallest
// |x| = (max - logit) / T whose cumulative mass reaches the target: a first
// histogram of mass over 64 bins per nat (spread wide, so few shared-memory
// atomics collide), then the crossing bin's tokens are gathered into shared memory
// and solved there when they fit, else the bin is split again by the bits of |x|.
// The draw is a block-wide prefix scan of masses in token order, chunk by chunk,
// stopping at the chunk that crosses u * kept_total.
#include "sampling.cuh"

using namespace vt;
using namespace vt::smp;

namespace {

struct RowParams {
  const float* temperature;
  const int* top_k;
  const float* top_p;
  const float* min_p;
  const float* uniform;
};

// The smallest |x| key kx whose cumulative mass (tokens by ascending |x|) reaches
// target; *kept = that cumulative mass. mass_hist / count_hist hold the first
// level (64 bins per nat). scaled(v, &x): false for tokens top-k drops; mass(x):
// the token's fixed-point mass, 0 when min-p drops it.
template <typename T, typename Scaled, typename Mass>
__device__ uint32_t top_p_select(const T* row, int vocab, uint64_t target, uint64_t* mass_hist, uint32_t* count_hist,
                                 Scaled&& scaled, Mass&& mass, uint64_t* kept) {
  __shared__ uint32_t cand_key[kThreads];
  __shared__ uint64_t cand_mass[kThreads];
  __shared__ int s_n;
  uint64_t below, at;
  int c = find_crossing(mass_hist, target, &below, &at);
  if (c < 0) {  // unreachable: the histogram holds the whole kept mass
    *kept = below;
    return 0xffffffffu;
  }
  uint64_t above = below;
  uint32_t lo = abs_key((float)c / kBinsPerNat), hi = abs_key((float)(c + 1) / kBinsPerNat) - 1;
  uint32_t n_in = count_hist[c];
  __syncthreads();  // everyone has read the bin before the next level clears it
  for (;;) {
    if (n_in <= (uint32_t)kThreads) {
      // Few tokens left in [lo, hi]: gather them and rank each against the others.
      if (threadIdx.x == 0) s_n = 0;
      __syncthreads();
      for_each_chunk(row, vocab, [&](int, const float(&v)[kPerThread], int count) {
#pragma unroll
        for (int j = 0; j < kPerThread; j++) {
          float x;
          if (j < count && scaled(v[j], &x)) {
            uint32_t a = abs_key(x);
            if (a >= lo && a <= hi) {
              uint64_t ms = mass(x);
              if (ms) {
                int slot = atomicAdd(&s_n, 1);
                cand_key[slot] = a;
                cand_mass[slot] = ms;
              }
            }
          }
        }
      });
      __syncthreads();
      const int n = s_n;
      uint32_t mine = 0xffffffffu;
      uint64_t cum = 0;
      if ((int)threadIdx.x < n) {
        const uint32_t a = cand_key[threadIdx.x];
        cum = above;
        for (int j = 0; j < n; j++)
          if (cand_key[j] <= a) cum += cand_mass[j];
        if (cum >= target) mine = a;
      }
      const uint32_t kx = ~(uint32_t)block_max_u64(~(uint64_t)mine);  // min over the block
      // The tokens at kx all have the same cum; the others give 0.
      *kept = block_max_u64(mine == kx && (int)threadIdx.x < n ? cum : 0);
      return kx;
    }
    const int s = level_shift(hi - lo);
    for (int b = threadIdx.x; b < kBins; b += kThreads) {
      mass_hist[b] = 0;
      count_hist[b] = 0;
    }
    __syncthreads();
    for_each_chunk(row, vocab, [&](int, const float(&v)[kPerThread], int count) {
#pragma unroll
      for (int j = 0; j < kPerThread; j++) {
        float x;
        if (j < count && scaled(v[j], &x)) {
          uint32_t a = abs_key(x);
          if (a >= lo && a <= hi) {
            uint64_t ms = mass(x);
            if (ms) {
              atomicAdd((unsigned long long*)&mass_hist[(a - lo) >> s], (unsigned long long)ms);
              atomicAdd(&count_hist[(a - lo) >> s], 1u);
            }
          }
        }
      }
    });
    __syncthreads();
    c = find_crossing(mass_hist, target - above, &below, &at);
    if (c < 0) {  // unreachable
      *kept = above + below;
      return hi;
    }
    above += below;
    lo += (uint32_t)c << s;
    n_in = count_hist[c];
    __syncthreads();
    if (s == 0) {
      *kept = above + at;
      return lo;
    }
    const uint32_t bin_hi = lo + ((1u << s) - 1);  // the last bin may reach past hi
    hi = bin_hi < hi ? bin_hi : hi;
  }
}

// grid: one block per row; block: kThreads
template <typename T>
__global__ void __launch_bounds__(kThreads) sample_kernel(int* out_ids, const T* logits, RowParams p, int vocab) {
  __shared__ uint64_t mass_hist[kBins];
  __shared__ uint32_t count_hist[kBins];
  __shared__ int s_found;
  const int r = blockIdx.x;
  const T* row = logits + (int64_t)r * vocab;

  // Argmax, the first index on ties: max of (key << 32 | ~index).
  uint64_t best = 0;
  for_each_chunk(row, vocab, [&](int base, const float(&v)[kPerThread], int count) {
#pragma unroll
    for (int j = 0; j < kPerThread; j++) {
      uint64_t packed = ((uint64_t)logit_key(v[j]) << 32) | (uint32_t)~(uint32_t)(base + j);
      if (j < count && packed > best) best = packed;
    }
  });
  best = block_max_u64(best);
  const int argmax = (int)~(uint32_t)best;
  const float m = key_value((uint32_t)(best >> 32));
  const float temperature = p.temperature[r];
  if (!(temperature >= kGreedyTemperature) || !isfinite(m)) {
    if (threadIdx.x == 0) out_ids[r] = argmax;
    return;
  }
  const float inv_t = 1.0f / temperature, min_p = p.min_p[r], top_p = p.top_p[r], u = p.uniform[r];
  const int top_k = p.top_k[r];
  uint32_t k_floor = 0;  // top-k keeps logit keys >= k_floor
  if (top_k > 0 && top_k < vocab) {
    uint32_t greater;
    k_floor = select_kth_key(row, vocab, top_k, count_hist, &greater);
  }
  // x = (logit - max) / T of a token that survives top-k; its mass (0: min-p drops it)
  auto scaled = [&](float v, float* x) {
    if (logit_key(v) < k_floor) return false;
    *x = (v - m) * inv_t;
    return true;
  };
  auto mass = [&](float x) -> uint64_t {
    float w = exp_nonpos(x);
    return w >= min_p ? mass_of(w) : 0;
  };

  const bool use_top_p = top_p < 1.0f;
  if (use_top_p) {
    for (int b = threadIdx.x; b < kBins; b += kThreads) {
      mass_hist[b] = 0;
      count_hist[b] = 0;
    }
    __syncthreads();
  }
  uint64_t total = 0;
  for_each_chunk(row, vocab, [&](int, const float(&v)[kPerThread], int count) {
#pragma unroll
    for (int j = 0; j < kPerThread; j++) {
      float x;
      if (j < count && scaled(v[j], &x)) {
        uint64_t ms = mass(x);
        total += ms;
        if (use_top_p && ms) {
          int b = (int)(fabsf(x) * kBinsPerNat);
          atomicAdd((unsigned long long*)&mass_hist[b], (unsigned long long)ms);
          atomicAdd(&count_hist[b], 1u);
        }
      }
    }
  });
  total = block_sum_u64(total);
  if (total == 0) {  // min_p > 1: nothing survives
    if (threadIdx.x == 0) out_ids[r] = argmax;
    return;
  }
  uint32_t kx = 0xffffffffu;  // top-p keeps |x| keys <= kx
  uint64_t kept = total;
  if (use_top_p) kx = top_p_select(row, vocab, top_p_target(total, top_p), mass_hist, count_hist, scaled, mass, &kept);

  const uint64_t target = draw_target(kept, u);
  if (threadIdx.x == 0) s_found = -1;
  const bool vec = row_aligned(row);
  const int chunks = num_chunks(vocab);
  uint64_t carry = 0;
  for (int c = 0; c < chunks; c++) {
    float v[kPerThread];
    int base, count;
    load_chunk(row, vocab, vec, c, v, &base, &count);
    uint64_t ms[kPerThread], local = 0;
#pragma unroll
    for (int j = 0; j < kPerThread; j++) {
      float x;
      ms[j] = j < count && scaled(v[j], &x) && abs_key(x) <= kx ? mass(x) : 0;
      local += ms[j];
    }
    uint64_t chunk_total;
    uint64_t run = carry + block_excl_scan_u64(local, &chunk_total);
    if (run <= target && target < run + local) {
      for (int j = 0; j < kPerThread; j++) {
        run += ms[j];
        if (run > target) {
          s_found = base + j;
          break;
        }
      }
    }
    carry += chunk_total;
    __syncthreads();
    if (s_found >= 0) break;
  }
  if (threadIdx.x == 0) out_ids[r] = s_found >= 0 ? s_found : argmax;
}

}  // namespace

extern "C" int vt_sample(uint64_t out_ids, uint64_t logits, uint64_t temperature, uint64_t top_k, uint64_t top_p,
                         uint64_t min_p, uint64_t uniform, int64_t n, int64_t vocab, int act) {
  if (n < 0) return set_error("vt_sample: n = %lld rows is negative", (long long)n);
  if (n == 0) return 0;
  if (n > 2147483647LL) return set_error("vt_sample: %lld rows is more than one launch handles", (long long)n);
  if (vocab < 1 || vocab > kMaxVocab)
    return set_error("vt_sample: vocab %lld is outside [1, %lld]", (long long)vocab, (long long)kMaxVocab);
  if (!out_ids || !logits || !temperature || !top_k || !top_p || !min_p || !uniform)
    return set_error("vt_sample: every tensor argument is required (one is 0)");
  VT_READY();
  const RowParams p{(const float*)temperature, (const int*)top_k, (const float*)top_p, (const float*)min_p, (const float*)uniform};
  return dispatch_float(act, "vt_sample", [&](auto t) {
    using T = typename decltype(t)::type;
    sample_kernel<T><<<(unsigned)n, kThreads, 0, g.stream>>>((int*)out_ids, (const T*)logits, p, (int)vocab);
    return check_launch("vt_sample");
  });
}
