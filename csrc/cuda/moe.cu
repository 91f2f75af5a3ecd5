// Mixture-of-experts kernels (csrc/cpu/moe.cpp and linear.cpp are the CPU twins):
// router softmax + top-k (one warp per token), the token-to-expert permutation (a
// count, a scan and a stable scatter, one block per expert), the grouped expert GEMM
// (one launch: each block finds its expert's row tile from the offsets, so only the
// experts that have rows are read) and the weighted un-permute and sum.
// The grouped GEMM of 16-bit operands is the skinny tensor-core kernel
// (skinny_mma.cuh): one block per (expert with rows, 16 output features), the
// expert's weights streamed once in 16-byte loads; the tiled kernel below serves f32
// and mixed dtypes. Small batches route (top-k + permutation) in one single-block
// launch; vt_moe_grouped_gemm_gather reads gate_up's input rows through the
// permutation (no gather launch). Prefill-sized batches (>= kTiledMinRows rows an
// expert) take the tiled kernel of moe_gemm_tiled.cuh, which gives the skinny
// kernel's bits.
// NOTE: every output of the grouped GEMM is reduced in an order fixed by K alone
// (skinny_mma.cuh; the tiled kernel: k = 0..K-1 inside one thread), whatever rows
// share its expert, so a token's result does not depend on the batch (batch
// invariance); the un-permute sums a token's slots in slot order. Whether the skinny
// or the tiled kernel runs depends on the number of rows, but both reduce in the same
// order (moe_gemm_tiled.cuh), so a row's bits do not; the f32 / mixed-dtype tiled
// kernel below is chosen by the dtypes alone.
#include "common.cuh"
#include "moe_gemm_tiled.cuh"
#include "skinny_mma.cuh"

#include "moe_route.cuh"  // vt_moe_route's decode-batch kernel
using namespace vt;

namespace {

constexpr int kTopkWarps = 4;  // tokens per block of the router kernel

// One token's softmax + top-k by one warp: logits l [E] -> weights w [k] f32, ids [k]
// (and s_ids [k] in shared memory when given); p: E floats of the warp's shared memory.
template <typename T>
__device__ __forceinline__ void topk_one_token(float* w, int* ids, int* s_ids, const T* l, float* p, int E, int k, int renorm, int lane) {
  float m = -INFINITY;
  for (int i = lane; i < E; i += 32) {
    p[i] = to_f32(l[i]);
    m = fmaxf(m, p[i]);
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
  float s = 0.f;
  for (int i = lane; i < E; i += 32) s += (p[i] = expf(p[i] - m));
  s = warp_sum(s);
  for (int i = lane; i < E; i += 32) p[i] /= s;
  __syncwarp();
  float sum = 0.f;
  for (int j = 0; j < k; j++) {
    float bv = -1.f;
    int bi = E;
    for (int i = lane; i < E; i += 32)
      if (p[i] > bv) bv = p[i], bi = i;  // strided in increasing i: the lane's lowest id on ties
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      float ov = __shfl_xor_sync(0xffffffffu, bv, o);
      int oi = __shfl_xor_sync(0xffffffffu, bi, o);
      if (ov > bv || (ov == bv && oi < bi)) bv = ov, bi = oi;
    }
    if (lane == 0) {
      w[j] = bv;
      ids[j] = bi;
      if (s_ids) s_ids[j] = bi;
      if (bi < E) p[bi] = -2.f;  // taken (probabilities are >= 0; bi == E only for NaN rows)
    }
    __syncwarp();
    sum += bv;
  }
  if (renorm && lane == 0)
    for (int j = 0; j < k; j++) w[j] /= sum;
}

// logits [T, E] -> topk_weights [T, k] f32, topk_ids [T, k]; dynamic smem: kTopkWarps * E floats
template <typename T>
__global__ void topk_softmax_kernel(float* weights, int* ids, const T* logits, int64_t num_tokens, int E, int k, int renorm) {
  extern __shared__ float probs[];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t t = (int64_t)blockIdx.x * kTopkWarps + warp;
  if (t >= num_tokens) return;
  topk_one_token(weights + t * k, ids + t * k, nullptr, logits + t * E, probs + warp * E, E, k, renorm, lane);
}

// offsets[e + 1] = number of pairs routed to expert e; grid: E blocks
__global__ void moe_count_kernel(int* offsets, const int* ids, int64_t num_pairs) {
  const int e = blockIdx.x;
  int n = 0;
  for (int64_t base = 0; base < num_pairs; base += blockDim.x) {
    int64_t p = base + threadIdx.x;
    n += __syncthreads_count(p < num_pairs && ids[p] == e);
  }
  if (threadIdx.x == 0) offsets[e + 1] = n;
  if (e == 0 && threadIdx.x == 0) offsets[0] = 0;
}

__global__ void moe_scan_kernel(int* offsets, int E) {
  for (int e = 0; e < E; e++) offsets[e + 1] += offsets[e];
}

// Stable scatter of expert e's pairs (grid: E blocks of 256 threads).
__global__ void moe_scatter_kernel(int* sorted_tokens, int* inv_perm, const int* offsets, const int* ids, int64_t num_pairs, int k) {
  __shared__ int warp_counts[8];
  const int e = blockIdx.x, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  int base = offsets[e];
  for (int64_t c = 0; c < num_pairs; c += blockDim.x) {
    const int64_t p = c + threadIdx.x;
    const bool mine = p < num_pairs && ids[p] == e;
    const unsigned ballot = __ballot_sync(0xffffffffu, mine);
    if (lane == 0) warp_counts[warp] = __popc(ballot);
    __syncthreads();
    int before = 0, total = 0;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++) {
      if (w < warp) before += warp_counts[w];
      total += warp_counts[w];
    }
    if (mine) {
      const int r = base + before + __popc(ballot & ((1u << lane) - 1u));
      sorted_tokens[r] = (int)(p / k);
      inv_perm[p] = r;
    }
    base += total;
    __syncthreads();
  }
}

// The whole permutation in one block for small batches (num_pairs <= kSmallPairs, E <=
// 1024): thread e counts expert e's pairs, a block scan gives the offsets, and thread e
// scatters its pairs in pair order (the same stable order as the three kernels above).
constexpr int kSmallPairs = 1024;

// s_ids [num_pairs] in shared memory; s_scan: blockDim.x ints of shared memory.
__device__ __forceinline__ void permute_small(int* offsets, int* sorted_tokens, int* inv_perm, const int* s_ids, int* s_scan, int num_pairs,
                                              int E, int k) {
  const int e = threadIdx.x;
  int n = 0;
  if (e < E)
    for (int p = 0; p < num_pairs; p++) n += s_ids[p] == e;
  s_scan[e] = n;
  __syncthreads();
  for (int d = 1; d < (int)blockDim.x; d <<= 1) {  // inclusive Hillis-Steele scan of the counts
    const int v = e >= d ? s_scan[e - d] : 0;
    __syncthreads();
    s_scan[e] += v;
    __syncthreads();
  }
  if (e < E) {
    int r = s_scan[e] - n;  // exclusive prefix: expert e's first row
    offsets[e + 1] = s_scan[e];
    if (e == 0) offsets[0] = 0;
    for (int p = 0; p < num_pairs && r < s_scan[e]; p++)
      if (s_ids[p] == e) {
        sorted_tokens[r] = p / k;
        inv_perm[p] = r++;
      }
  }
}

__global__ void moe_permute_small_kernel(int* offsets, int* sorted_tokens, int* inv_perm, const int* ids, int num_pairs, int E, int k) {
  __shared__ int s_ids[kSmallPairs];
  __shared__ int s_scan[1024];
  for (int p = threadIdx.x; p < num_pairs; p += blockDim.x) s_ids[p] = ids[p];
  __syncthreads();
  permute_small(offsets, sorted_tokens, inv_perm, s_ids, s_scan, num_pairs, E, k);
}

// Router top-k and permutation in one single-block launch (num_pairs <= kSmallPairs,
// E <= 1024): the first kRouteWarps warps run topk_one_token over the tokens (the same
// code as topk_softmax_kernel), then the block permutes as moe_permute_small_kernel
// does, so the results are those of the two launches, bit for bit. Dynamic smem:
// kRouteWarps * E floats. Decode batches (num_pairs <= 128, k <= 32) take
// moe_route.cuh's kernel instead (the same bits in far fewer serial steps).
constexpr int kRouteWarps = 8;

template <typename T>
__global__ void moe_route_small_kernel(float* weights, int* ids, int* offsets, int* sorted_tokens, int* inv_perm, const T* logits,
                                       int num_tokens, int E, int k, int renorm) {
  extern __shared__ float probs[];
  __shared__ int s_ids[kSmallPairs];
  __shared__ int s_scan[1024];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (warp < kRouteWarps)
    for (int t = warp; t < num_tokens; t += kRouteWarps)
      topk_one_token(weights + (int64_t)t * k, ids + (int64_t)t * k, s_ids + t * k, logits + (int64_t)t * E, probs + warp * E, E, k, renorm,
                     lane);
  __syncthreads();
  permute_small(offsets, sorted_tokens, inv_perm, s_ids, s_scan, num_tokens * k, E, k);
}

constexpr int BM = 16, BN = 64, BK = 32;

// out [R, N] = per-expert x [R, K] . w[e] [N, K]^T; 256 threads: one row x 4 columns each.
// grid: (ceil(N / BN), row tiles); a block walks tiles blockIdx.y, + gridDim.y, ...
// x_rows: the fused gather of vt_moe_grouped_gemm_gather.
template <typename T, typename W>
__global__ void grouped_gemm_kernel(T* out, const T* x, const W* w, const int* offsets, int E, int64_t N, int64_t K, int64_t max_tiles,
                                    const int* x_rows) {
  __shared__ float xs[BM][BK];
  __shared__ float ws[BN][BK + 1];
  const int tr = threadIdx.x / 16, tc = (threadIdx.x % 16) * 4;
  const int64_t n0 = (int64_t)blockIdx.x * BN;
  for (int64_t tile = blockIdx.y; tile < max_tiles; tile += gridDim.y) {
    // Which expert's which row tile: experts in order, ceil(rows / BM) tiles each.
    int64_t t = tile, r0 = -1, r1 = 0;
    int e = 0;
    for (; e < E; e++) {
      const int a = offsets[e], b = offsets[e + 1];
      const int64_t tiles = (b - a + BM - 1) / BM;
      if (t < tiles) {
        r0 = a + t * BM;
        r1 = min((int64_t)b, r0 + BM);
        break;
      }
      t -= tiles;
    }
    if (r0 < 0) return;  // past the last tile (uniform over the block)
    const W* we = w + (int64_t)e * N * K;
    float acc[4] = {0.f, 0.f, 0.f, 0.f};
    for (int64_t k0 = 0; k0 < K; k0 += BK) {
      for (int i = threadIdx.x; i < BM * BK; i += blockDim.x) {
        const int r = i / BK, kk = i % BK;
        const bool in = r0 + r < r1 && k0 + kk < K;
        xs[r][kk] = in ? to_f32(x[(x_rows ? (int64_t)x_rows[r0 + r] : r0 + r) * K + k0 + kk]) : 0.f;
      }
      for (int i = threadIdx.x; i < BN * BK; i += blockDim.x) {
        const int n = i / BK, kk = i % BK;
        ws[n][kk] = (n0 + n < N && k0 + kk < K) ? to_f32(we[(n0 + n) * K + k0 + kk]) : 0.f;
      }
      __syncthreads();
#pragma unroll 8
      for (int kk = 0; kk < BK; kk++) {
        const float xv = xs[tr][kk];
#pragma unroll
        for (int j = 0; j < 4; j++) acc[j] = fmaf(xv, ws[tc + j][kk], acc[j]);
      }
      __syncthreads();
    }
    if (r0 + tr < r1)
#pragma unroll
      for (int j = 0; j < 4; j++)
        if (n0 + tc + j < N) out[(r0 + tr) * N + n0 + tc + j] = from_f32<T>(acc[j]);
  }
}

// out[t] = sum_j weights[t, j] * y[inv[t * k + j]] (+ sigmoid(gate[t]) * shared[t]), the
// slots summed in slot order (as the CPU twin). grid: (ceil(hidden / (V * 128)), tokens);
// each thread V consecutive features, the rows of up to 8 slots loaded before their sums.
constexpr int kUnpermuteThreads = 128;

template <typename T, int V>
__global__ void __launch_bounds__(kUnpermuteThreads) unpermute_kernel(T* out, const T* y, const float* weights, const int* inv,
                                                                      const T* shared, const T* gate, int64_t num_tokens, int k,
                                                                      int64_t hidden) {
  const int64_t i0 = ((int64_t)blockIdx.x * kUnpermuteThreads + threadIdx.x) * V;
  if (i0 >= hidden) return;
  for (int64_t t = blockIdx.y; t < num_tokens; t += gridDim.y) {
  float acc[V];
#pragma unroll
  for (int v = 0; v < V; v++) acc[v] = 0.f;
  for (int j0 = 0; j0 < k; j0 += 8) {
    float f[8][V];
#pragma unroll
    for (int jj = 0; jj < 8; jj++)
      if (j0 + jj < k) load_v<T, V>(y + (int64_t)inv[t * k + j0 + jj] * hidden + i0, f[jj]);
#pragma unroll
    for (int jj = 0; jj < 8; jj++)
      if (j0 + jj < k) {
        const float w = weights[t * k + j0 + jj];
#pragma unroll
        for (int v = 0; v < V; v++) acc[v] += w * f[jj][v];
      }
  }
  if (shared) {
    const float g = gate ? 1.f / (1.f + expf(-to_f32(gate[t]))) : 1.f;
    float sv[V];
    load_v<T, V>(shared + t * hidden + i0, sv);
#pragma unroll
    for (int v = 0; v < V; v++) acc[v] += g * sv[v];
  }
  store_v<T, V>(out + t * hidden + i0, acc);
  }
}

template <typename P>
P* dp(uint64_t a) { return reinterpret_cast<P*>((uintptr_t)a); }

}  // namespace

extern "C" int vt_moe_topk_softmax(uint64_t topk_weights, uint64_t topk_ids, uint64_t logits, int64_t num_tokens, int64_t num_experts,
                                   int64_t k, int renormalize, int act) {
  if (num_experts <= 0 || num_experts > 1024 || k <= 0 || k > num_experts || num_tokens < 0)
    return set_error("vt_moe_topk_softmax: bad shape tokens=%lld experts=%lld k=%lld (need 0 < k <= experts <= 1024)",
                     (long long)num_tokens, (long long)num_experts, (long long)k);
  if (num_tokens == 0) return 0;
  VT_READY();
  return dispatch_float(act, "vt_moe_topk_softmax", [&](auto a) {
    using T = typename decltype(a)::type;
    const int blocks = (int)((num_tokens + kTopkWarps - 1) / kTopkWarps);
    const size_t smem = (size_t)kTopkWarps * num_experts * sizeof(float);
    topk_softmax_kernel<T><<<blocks, 32 * kTopkWarps, smem, g.stream>>>(dp<float>(topk_weights), dp<int>(topk_ids), dp<const T>(logits),
                                                                        num_tokens, (int)num_experts, (int)k, renormalize);
    return check_launch("vt_moe_topk_softmax");
  });
}

extern "C" int vt_moe_permute(uint64_t expert_offsets, uint64_t sorted_token_ids, uint64_t inv_perm, uint64_t topk_ids, int64_t num_pairs,
                              int64_t num_experts, int64_t k) {
  if (num_pairs < 0 || num_experts <= 0 || k <= 0 || num_pairs % k != 0 || num_pairs > INT32_MAX)
    return set_error("vt_moe_permute: bad shape pairs=%lld experts=%lld k=%lld", (long long)num_pairs, (long long)num_experts, (long long)k);
  VT_READY();
  int* off = dp<int>(expert_offsets);
  const int* ids = dp<const int>(topk_ids);
  if (num_pairs <= kSmallPairs && num_experts <= 1024) {
    const int threads = num_experts <= 32 ? 32 : (int)((num_experts + 31) / 32 * 32);
    moe_permute_small_kernel<<<1, threads, 0, g.stream>>>(off, dp<int>(sorted_token_ids), dp<int>(inv_perm), ids, (int)num_pairs,
                                                         (int)num_experts, (int)k);
    return check_launch("vt_moe_permute");
  }
  moe_count_kernel<<<(int)num_experts, 256, 0, g.stream>>>(off, ids, num_pairs);
  moe_scan_kernel<<<1, 1, 0, g.stream>>>(off, (int)num_experts);
  if (num_pairs > 0)
    moe_scatter_kernel<<<(int)num_experts, 256, 0, g.stream>>>(dp<int>(sorted_token_ids), dp<int>(inv_perm), off, ids, num_pairs, (int)k);
  return check_launch("vt_moe_permute");
}

extern "C" int vt_moe_route(uint64_t topk_weights, uint64_t topk_ids, uint64_t expert_offsets, uint64_t sorted_token_ids, uint64_t inv_perm,
                            uint64_t logits, int64_t num_tokens, int64_t num_experts, int64_t k, int renormalize, int act) {
  if (num_experts <= 0 || num_experts > 1024 || k <= 0 || k > num_experts || num_tokens < 0 || num_tokens * k > INT32_MAX)
    return set_error("vt_moe_route: bad shape tokens=%lld experts=%lld k=%lld (need 0 < k <= experts <= 1024)", (long long)num_tokens,
                     (long long)num_experts, (long long)k);
  const int64_t P = num_tokens * k;
  if (P > kSmallPairs) {  // two launches past one block's pairs
    if (vt_moe_topk_softmax(topk_weights, topk_ids, logits, num_tokens, num_experts, k, renormalize, act)) return 1;
    return vt_moe_permute(expert_offsets, sorted_token_ids, inv_perm, topk_ids, P, num_experts, k);
  }
  VT_READY();
  return dispatch_float(act, "vt_moe_route", [&](auto a) {
    using T = typename decltype(a)::type;
    if (P <= route::kFastRoutePairs && k <= 32)  // decode batches: moe_route.cuh, the same bits in fewer serial steps
      return route::launch_route_fast<T>(dp<float>(topk_weights), dp<int>(topk_ids), dp<int>(expert_offsets), dp<int>(sorted_token_ids),
                                         dp<int>(inv_perm), dp<const T>(logits), (int)num_tokens, (int)num_experts, (int)k, renormalize);
    const int threads = num_experts < 32 * kRouteWarps ? 32 * kRouteWarps : (int)((num_experts + 31) / 32 * 32);
    const size_t smem = (size_t)kRouteWarps * num_experts * sizeof(float);
    moe_route_small_kernel<T><<<1, threads, smem, g.stream>>>(dp<float>(topk_weights), dp<int>(topk_ids), dp<int>(expert_offsets),
                                                              dp<int>(sorted_token_ids), dp<int>(inv_perm), dp<const T>(logits), (int)num_tokens,
                                                              (int)num_experts, (int)k, renormalize);
    return check_launch("vt_moe_route");
  });
}

extern "C" int vt_moe_grouped_gemm_gather(uint64_t out, uint64_t x, uint64_t x_rows, uint64_t weight, uint64_t expert_offsets,
                                          int64_t num_rows, int64_t num_experts, int64_t N, int64_t K, int wdt, int act) {
  if (num_rows < 0 || num_experts <= 0 || N <= 0 || K <= 0)
    return set_error("vt_moe_grouped_gemm: bad shape rows=%lld experts=%lld N=%lld K=%lld", (long long)num_rows, (long long)num_experts,
                     (long long)N, (long long)K);
  if (num_rows == 0) return 0;
  VT_READY();
  const int* rows = dp<const int>(x_rows);
  if (skinny_ok(act, wdt, K, x, weight)) {
    // One block row per expert with rows (at most min(R, E)); a block of an expert
    // without rows past the last returns at once.
    const int64_t grid_y = num_rows < num_experts ? num_rows : num_experts;
    const int64_t rows_hint = 2 * ((num_rows + grid_y - 1) / grid_y);
    // Prefill-sized batches: the tiled kernel (moe_gemm_tiled.cuh), same bits.
    const bool tiled = moe_tiled_enabled() && num_rows / grid_y >= kTiledMinRows;
    return dispatch_float(act, "vt_moe_grouped_gemm", [&](auto a) {
      using T = typename decltype(a)::type;
      if constexpr (sizeof(T) == 2)
        if (tiled)
          return launch_moe_gemm_tiled<T>(dp<T>(out), dp<const T>(x), dp<const T>(weight), dp<const int>(expert_offsets), (int)num_experts,
                                          num_rows, N, K, rows, "vt_moe_grouped_gemm (tiled)");
      if constexpr (sizeof(T) == 2)
        return launch_skinny<T, 4>(dp<T>(out), dp<const T>(x), dp<const T>(weight), nullptr, dp<const int>(expert_offsets), (int)num_experts,
                                0, N, K, grid_y, rows_hint, "vt_moe_grouped_gemm", rows);
      return 1;
    });
  }
  // At most ceil(R / BM) + E - 1 row tiles (each expert's last one may be partial).
  const int64_t max_tiles = (num_rows + BM - 1) / BM + num_experts - 1;
  const int64_t tiles = max_tiles < num_rows ? max_tiles : num_rows;
  dim3 grid((unsigned)((N + BN - 1) / BN), (unsigned)(tiles < 65535 ? tiles : 65535));
  return dispatch_float(act, "vt_moe_grouped_gemm", [&](auto a) {
    using T = typename decltype(a)::type;
    return dispatch_float(wdt, "vt_moe_grouped_gemm", [&](auto b) {
      using W = typename decltype(b)::type;
      grouped_gemm_kernel<T, W><<<grid, 256, 0, g.stream>>>(dp<T>(out), dp<const T>(x), dp<const W>(weight), dp<const int>(expert_offsets),
                                                            (int)num_experts, N, K, max_tiles, rows);
      return check_launch("vt_moe_grouped_gemm");
    });
  });
}

extern "C" int vt_moe_grouped_gemm(uint64_t out, uint64_t x, uint64_t weight, uint64_t expert_offsets, int64_t num_rows, int64_t num_experts,
                                   int64_t N, int64_t K, int wdt, int act) {
  return vt_moe_grouped_gemm_gather(out, x, 0, weight, expert_offsets, num_rows, num_experts, N, K, wdt, act);
}

extern "C" int vt_moe_unpermute_sum(uint64_t out, uint64_t y, uint64_t topk_weights, uint64_t inv_perm, uint64_t shared, uint64_t shared_gate,
                                    int64_t num_tokens, int64_t k, int64_t hidden, int act) {
  if (num_tokens < 0 || k <= 0 || hidden <= 0)
    return set_error("vt_moe_unpermute_sum: bad shape tokens=%lld k=%lld hidden=%lld", (long long)num_tokens, (long long)k, (long long)hidden);
  if (num_tokens == 0) return 0;
  VT_READY();
  return dispatch_float(act, "vt_moe_unpermute_sum", [&](auto a) {
    using T = typename decltype(a)::type;
    const bool vec = hidden % 8 == 0 && aligned_to(out, 16) && aligned_to(y, 16) && (!shared || aligned_to(shared, 16));
    const int V = vec ? 8 : 1;
    const dim3 grid((unsigned)((hidden + V * kUnpermuteThreads - 1) / (V * kUnpermuteThreads)), (unsigned)(num_tokens < 65535 ? num_tokens : 65535));
    auto launch = [&](auto kernel) {
      kernel<<<grid, kUnpermuteThreads, 0, g.stream>>>(dp<T>(out), dp<const T>(y), dp<const float>(topk_weights), dp<const int>(inv_perm),
                                                       dp<const T>(shared), dp<const T>(shared_gate), num_tokens, (int)k, hidden);
    };
    if (vec) launch(unpermute_kernel<T, 8>);
    else launch(unpermute_kernel<T, 1>);
    return check_launch("vt_moe_unpermute_sum");
  });
}
