// The router's top-k + permutation at decode batch sizes (vt_moe_route in moe.cu for
// num_pairs = T * k <= kFastRoutePairs and k <= 32; the CPU twin is csrc/cpu/moe.cpp):
// the results of moe_route_small_kernel (topk_one_token, then permute_small), bit for
// bit, in far fewer serial steps. The work is tiny (one token: E logits, k pairs); the
// time was latency: k rounds of a shared-memory argmax with ten shuffles each, then a
// Hillis-Steele scan over 256+ threads with two __syncthreads per step.
//
// Top-k: one warp per token, the token's logits in registers (lane i % 32, slot i / 32,
// the reference's strided layout). The softmax is computed as the reference does (the
// same per-lane order and shuffle trees): p = exp(l - max) / sum, all in f32. The
// selection runs on p itself, not on the logits: distinct logits can give equal p
// (exp underflows to 0, or rounds to one value), and such ties go to the lower expert
// id as in the reference. p >= +0, so its bits as an int order as p does; a round is
// one warp max of the lanes' best keys and one warp min of the ids holding it
// (REDUX on sm_80+), and only the lane that owned the winner rescans its slots.
// Permutation: one warp. Ranks within an expert: __match_any_sync over 32 pairs at a
// time plus the counts of earlier chunks (shared), which keeps pair order; the offsets:
// each lane sums a contiguous segment of NPL experts, then one warp scan.
// NOTE: a token's top-k is computed by one warp from its logits alone, whatever the
// batch, so results stay batch invariant (and equal to the larger-batch kernels').
#pragma once
#include "common.cuh"

namespace vt {
namespace route {

constexpr int kFastRoutePairs = 128;  // T * k at most: 4 rank chunks of 32 pairs
constexpr int kFastRouteWarps = 16;   // tokens in flight: warp w takes tokens w, w + 16, ...

__device__ __forceinline__ int warp_max_i32(int v) {
#if __CUDA_ARCH__ >= 800
  return __reduce_max_sync(0xffffffffu, v);
#else
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
#endif
}

__device__ __forceinline__ int warp_min_i32(int v) {
#if __CUDA_ARCH__ >= 800
  return __reduce_min_sync(0xffffffffu, v);
#else
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = min(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
#endif
}

// The lane's best key (highest; the lowest slot, so the lowest id, on ties).
template <int NPL>
__device__ __forceinline__ void best_slot(const int (&key)[NPL], int& bk, int& bs) {
  bk = -1, bs = 0;
#pragma unroll
  for (int j = 0; j < NPL; j++)
    if (key[j] > bk) bk = key[j], bs = j;
}

// One token's softmax + top-k by one warp: logits l [E] (E <= 32 * NPL) -> w [k] f32,
// ids [k], s_ids [k] (shared); k <= 32. Lane j writes the j-th choice.
template <typename T, int NPL>
__device__ __forceinline__ void topk_token_fast(float* w, int* ids, int* s_ids, const T* l, int E, int k, int renorm, int lane) {
  float v[NPL];
#pragma unroll
  for (int j = 0; j < NPL; j++) v[j] = lane + 32 * j < E ? to_f32(l[lane + 32 * j]) : 0.f;
  float m = -INFINITY;
#pragma unroll
  for (int j = 0; j < NPL; j++)
    if (lane + 32 * j < E) m = fmaxf(m, v[j]);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
  float s = 0.f;
#pragma unroll
  for (int j = 0; j < NPL; j++)
    if (lane + 32 * j < E) s += (v[j] = expf(v[j] - m));
  s = warp_sum(s);  // the same in every lane (each butterfly step adds the same two values)
  // A NaN sum (a NaN or +inf logit, or all -inf) makes every p NaN: the reference then
  // picks no expert (id E) with weight -1 in every round; s >= 1 otherwise (exp(0) is in it).
  const bool nan_row = isnan(s);
  int key[NPL];  // the bits of p = e / s; -1: taken, or past E
#pragma unroll
  for (int j = 0; j < NPL; j++) key[j] = lane + 32 * j < E && !nan_row ? __float_as_int(v[j] / s) : -1;
  int bk, bs;
  best_slot(key, bk, bs);
  float sum = 0.f, my_w = 0.f;
  int my_id = E;
  for (int j = 0; j < k; j++) {
    float bv = -1.f;
    int bi = E;
    if (!nan_row) {  // uniform over the warp
      const int gk = warp_max_i32(bk);
      bi = warp_min_i32(bk == gk ? lane + 32 * bs : 0x7fffffff);
      bv = __int_as_float(gk);
      if ((bi & 31) == lane) {  // the owner (bs == bi / 32): take it, find its next best
#pragma unroll
        for (int jj = 0; jj < NPL; jj++)
          if (jj == bs) key[jj] = -1;
        best_slot(key, bk, bs);
      }
    }
    if (lane == j) my_w = bv, my_id = bi;
    sum += bv;  // in round order, as the reference
  }
  if (lane < k) {
    w[lane] = renorm ? my_w / sum : my_w;
    ids[lane] = my_id;
    s_ids[lane] = my_id;
  }
}

// The permutation of s_ids [P] (shared, P <= kFastRoutePairs) by one warp ->
// offsets [E + 1], sorted_tokens [P], inv_perm [P]; s_cnt [32 * NPL] shared, zero on
// entry. Pairs with id >= E (a NaN row's) are neither counted nor scattered, as in
// permute_small.
template <int NPL>
__device__ __forceinline__ void permute_fast(int* offsets, int* sorted_tokens, int* inv_perm, const int* s_ids, int* s_cnt, int P, int E, int k,
                                             int lane) {
  constexpr int C = kFastRoutePairs / 32;
  const unsigned lower = (1u << lane) - 1u;
  int id[C], rank[C];  // chunk c: pair 32 c + lane's expert and rank among its expert's pairs
#pragma unroll
  for (int c = 0; c < C; c++) {
    id[c] = 32 * c + lane < P ? s_ids[32 * c + lane] : E;
    rank[c] = 0;
    if (32 * c < P) {  // uniform
      const unsigned same = __match_any_sync(0xffffffffu, id[c]);
      const int before = id[c] < E ? s_cnt[id[c]] : 0;  // the expert's pairs in earlier chunks
      rank[c] = before + __popc(same & lower);
      __syncwarp();
      if (id[c] < E && (same & lower) == 0) s_cnt[id[c]] = before + __popc(same);  // the group's lowest lane
      __syncwarp();
    }
  }
  int cnt[NPL], total = 0;  // lane's experts: lane * NPL .. + NPL - 1
#pragma unroll
  for (int j = 0; j < NPL; j++) {
    cnt[j] = lane * NPL + j < E ? s_cnt[lane * NPL + j] : 0;
    total += cnt[j];
  }
  int incl = total;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const int u = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += u;
  }
  int run = incl - total;  // pairs of the experts before the lane's segment
#pragma unroll
  for (int j = 0; j < NPL; j++) {
    const int e = lane * NPL + j;
    if (e < E) {
      s_cnt[e] = run;  // now expert e's first row
      run += cnt[j];
      offsets[e + 1] = run;
    }
  }
  if (lane == 0) offsets[0] = 0;
  __syncwarp();
#pragma unroll
  for (int c = 0; c < C; c++) {
    const int p = 32 * c + lane;
    if (p < P && id[c] < E) {
      const int r = s_cnt[id[c]] + rank[c];
      sorted_tokens[r] = p / k;
      inv_perm[p] = r;
    }
  }
}

// logits [T, E] -> topk_weights [T, k] f32, topk_ids [T, k], expert_offsets [E + 1],
// sorted_token_ids [T * k], inv_perm [T * k]; one block of 32 * min(max(T, 1), 16) threads.
template <typename T, int NPL>
__global__ void __launch_bounds__(32 * kFastRouteWarps)
    moe_route_fast_kernel(float* weights, int* ids, int* offsets, int* sorted_tokens, int* inv_perm, const T* logits, int num_tokens, int E,
                          int k, int renorm) {
  __shared__ int s_ids[kFastRoutePairs];
  __shared__ int s_cnt[32 * NPL];
  for (int e = threadIdx.x; e < E; e += blockDim.x) s_cnt[e] = 0;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int t = warp; t < num_tokens; t += (int)(blockDim.x >> 5))
    topk_token_fast<T, NPL>(weights + t * k, ids + t * k, s_ids + t * k, logits + (int64_t)t * E, E, k, renorm, lane);
  __syncthreads();
  if (warp == 0) permute_fast<NPL>(offsets, sorted_tokens, inv_perm, s_ids, s_cnt, num_tokens * k, E, k, lane);
}

// The launch for T * k <= kFastRoutePairs, k <= 32, E <= 1024 (NPL: E / 32 rounded up
// to a power of two). 0 on success.
template <typename T>
int launch_route_fast(float* weights, int* ids, int* offsets, int* sorted_tokens, int* inv_perm, const T* logits, int T_, int E, int k,
                      int renorm) {
  const int warps = T_ < 1 ? 1 : T_ < kFastRouteWarps ? T_ : kFastRouteWarps;
  auto go = [&](auto npl) {
    moe_route_fast_kernel<T, decltype(npl)::value>
        <<<1, 32 * warps, 0, g.stream>>>(weights, ids, offsets, sorted_tokens, inv_perm, logits, T_, E, k, renorm);
    return check_launch("vt_moe_route");
  };
  if (E <= 32) return go(std::integral_constant<int, 1>{});
  if (E <= 64) return go(std::integral_constant<int, 2>{});
  if (E <= 128) return go(std::integral_constant<int, 4>{});
  if (E <= 256) return go(std::integral_constant<int, 8>{});
  if (E <= 512) return go(std::integral_constant<int, 16>{});
  return go(std::integral_constant<int, 32>{});
}

}  // namespace route
}  // namespace vt
