// Block-wide building blocks of the sampling kernels (sampling.cu, logprobs.cu):
// one thread block per row of logits, kThreads threads, walking the row in
// chunks where each thread owns 8 consecutive tokens.
#pragma once
#include "../sampling_math.h"
#include "common.cuh"

namespace vt {
namespace smp {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr int kPerThread = 8;
constexpr int kChunk = kThreads * kPerThread;

// Thread-local view of chunk c: v[0, count) are tokens [base, base + count) of the
// row, the rest -inf. 16-byte loads when the row is aligned (vec).
// NOTE: no load has an address outside the row, even one whose value is thrown
// away: compute-sanitizer caught a 16-byte read just past the last row by a thread
// whose chunk lay wholly past the end (base == vocab), although the PTX guards that
// load. So the 16-byte load runs on every thread of an aligned row at a clamped
// address, and the tail's scalar loads are clamped too.
template <typename T>
__device__ __forceinline__ void load_chunk(const T* row, int vocab, bool vec, int c, float (&v)[kPerThread], int* base, int* count) {
  const int b = c * kChunk + threadIdx.x * kPerThread;
  int n = vocab - b;
  n = n < 0 ? 0 : (n > kPerThread ? kPerThread : n);
  if (vec && vocab >= kPerThread) {
    const int last = (vocab - kPerThread) & ~(kPerThread - 1);  // the last 8-group wholly inside the row
    float w[kPerThread];
    load8(row + (b < last ? b : last), w);
#pragma unroll
    for (int j = 0; j < kPerThread; j++) v[j] = w[j];
  }
  if (!(vec && vocab >= kPerThread) || n < kPerThread) {
    const int first = n > 0 ? b : 0;
#pragma unroll
    for (int j = 0; j < kPerThread; j++) {
      const float x = to_f32(row[first + (j < n ? j : 0)]);
      v[j] = j < n ? x : -INFINITY;
    }
  }
  *base = b;
  *count = n;
}

__device__ __forceinline__ bool row_aligned(const void* row) { return ((uintptr_t)row & 15) == 0; }
__host__ __device__ __forceinline__ int num_chunks(int vocab) { return (vocab + kChunk - 1) / kChunk; }

// Calls f(base, v, count) once per chunk on every thread (a uniform trip count, so
// f may use block-wide operations).
template <typename T, typename F>
__device__ __forceinline__ void for_each_chunk(const T* row, int vocab, F&& f) {
  const bool vec = row_aligned(row);
  const int chunks = num_chunks(vocab);
  for (int c = 0; c < chunks; c++) {
    float v[kPerThread];
    int base, count;
    load_chunk(row, vocab, vec, c, v, &base, &count);
    f(base, v, count);
  }
}

__device__ __forceinline__ uint64_t warp_max_u64(uint64_t v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    uint64_t w = __shfl_xor_sync(0xffffffffu, v, o);
    v = w > v ? w : v;
  }
  return v;
}

__device__ __forceinline__ uint64_t warp_sum_u64(uint64_t v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ uint64_t block_max_u64(uint64_t v) {
  __shared__ uint64_t part[kWarps];
  v = warp_max_u64(v);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
  __syncthreads();
  uint64_t r = part[0];
  for (int w = 1; w < kWarps; w++) r = part[w] > r ? part[w] : r;
  __syncthreads();
  return r;
}

__device__ __forceinline__ uint64_t block_sum_u64(uint64_t v) {
  __shared__ uint64_t part[kWarps];
  v = warp_sum_u64(v);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
  __syncthreads();
  uint64_t r = 0;
  for (int w = 0; w < kWarps; w++) r += part[w];
  __syncthreads();
  return r;
}

// Exclusive prefix sum over the block in thread order; *total gets the sum.
__device__ __forceinline__ uint64_t block_excl_scan_u64(uint64_t v, uint64_t* total) {
  __shared__ uint64_t part[kWarps];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  uint64_t incl = v;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    uint64_t w = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += w;
  }
  if (lane == 31) part[warp] = incl;
  __syncthreads();
  uint64_t before = 0, sum = 0;
  for (int w = 0; w < kWarps; w++) {
    if (w < warp) before += part[w];
    sum += part[w];
  }
  __syncthreads();
  *total = sum;
  return before + incl - v;
}

// The crossing of a histogram of kBins bins: the first bin c (ascending) where the running sum
// reaches `need`; *below = the sum of the bins before c, *at = hist[c]. c = -1
// when the whole histogram sums to less than need.
template <typename U>
__device__ __forceinline__ int find_crossing(const U* hist, uint64_t need, uint64_t* below, uint64_t* at) {
  __shared__ int s_c;
  __shared__ uint64_t s_below, s_at;
  constexpr int kPer = kBins / kThreads;
  const int first = threadIdx.x * kPer;
  uint64_t local = 0;
#pragma unroll
  for (int j = 0; j < kPer; j++) local += hist[first + j];
  if (threadIdx.x == 0) {
    s_c = -1;
    s_below = s_at = 0;
  }
  uint64_t total;
  uint64_t run = block_excl_scan_u64(local, &total);  // (syncs: s_c = -1 is visible)
  if (run < need && run + local >= need) {
    for (int j = 0; j < kPer; j++) {
      uint64_t h = hist[first + j];
      if (run + h >= need) {
        s_c = first + j;
        s_below = run;
        s_at = h;
        break;
      }
      run += h;
    }
  }
  __syncthreads();
  int c = s_c;
  *below = s_below;
  *at = s_at;
  __syncthreads();
  return c;
}

// The smallest shift s with (span >> s) < kBins.
__device__ __forceinline__ int level_shift(uint32_t span) {
  int s = 0;
  while ((span >> s) >= (uint32_t)kBins) s++;
  return s;
}

// Descending selection by count: the largest logit key K with
// #{tokens: key >= K} >= k (the k-th largest; ties at it are all >= K), and in
// *greater the number of tokens with key > K. 1 <= k <= vocab. Works on the
// ascending key ~key, 11 bits a pass; 16-bit dtypes leave the low 10 bits of a
// key fixed by its sign, so they need two passes, f32 three.
template <typename T>
__device__ uint32_t select_kth_key(const T* row, int vocab, int k, uint32_t* hist, uint32_t* greater) {
  uint32_t lo = 0, hi = 0xffffffffu;
  uint64_t above = 0;
  for (;;) {
    const int s = level_shift(hi - lo);
    for (int b = threadIdx.x; b < kBins; b += kThreads) hist[b] = 0;
    __syncthreads();
    for_each_chunk(row, vocab, [&](int, const float(&v)[kPerThread], int count) {
#pragma unroll
      for (int j = 0; j < kPerThread; j++) {
        uint32_t a = ~logit_key(v[j]);
        if (j < count && a >= lo && a <= hi) atomicAdd(&hist[(a - lo) >> s], 1u);
      }
    });
    __syncthreads();
    uint64_t below, at;
    int c = find_crossing(hist, (uint64_t)k - above, &below, &at);
    if (c < 0) c = 0;  // unreachable: the range always holds the k-th
    above += below;
    lo += (uint32_t)c << s;
    if (s == 0 || (sizeof(T) == 2 && s <= 10)) {
      if (s != 0) lo |= (lo & 0x80000000u) ? 0u : 0x3ffu;
      *greater = (uint32_t)above;
      return ~lo;
    }
    const uint32_t bin_hi = lo + ((1u << s) - 1);  // the last bin may reach past hi
    hi = bin_hi < hi ? bin_hi : hi;
  }
}

}  // namespace smp
}  // namespace vt
