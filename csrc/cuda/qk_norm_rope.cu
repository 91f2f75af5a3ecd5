// vt_qk_norm_rope: Qwen3's (and Gemma 3's) per-head q/k RMSNorm followed by the
// rotary embedding, in place on the fused qkv projection's rows, in one launch
// (was: two separate q and k GEMMs so that the norms saw contiguous rows, two norm
// launches and a rope launch). vt_qk_norm_rope_and_cache also writes the normed,
// rotated k and the v row into the paged cache in that launch (was: a
// vt_reshape_and_cache launch after it). csrc/cpu/rope.cpp is the CPU twin.
// NOTE: the normalized value is rounded to the activation dtype before the rotation,
// as the separate norm kernel's output was, so the result is the two-kernel path's.
// NOTE: both ops are one kernel (CACHE false / true): the cache gets the very values
// stored back into k, so the fused op's bits are vt_qk_norm_rope then
// vt_reshape_and_cache's.
#include "common.cuh"

using namespace vt;

namespace {

// grid (tokens, ceil(heads / 8)), 8 warps a block, one warp per head (q heads, then k
// heads; with CACHE, then v heads, which are only copied): every head of a decode
// token in flight at once. smem: 8 * D floats.
constexpr int kHeadsPerBlock = 8;

// What CACHE adds: v rows (v_stride apart), the caches [slots, num_kv_heads * D], and
// each token's slot (negative: padding, no cache write).
template <typename T>
struct CacheArgs {
  const T* v;
  T* k_cache;
  T* v_cache;
  const int* slots;
  int64_t v_stride;
};

template <typename T, typename W, bool CACHE>
__global__ void qk_norm_rope_kernel(T* q, T* k, const W* q_weight, const W* k_weight, const int* positions, const float* cos_sin,
                                    int num_heads, int num_kv_heads, int D, int rotary_dim, int64_t q_stride, int64_t k_stride, float eps,
                                    float weight_offset, bool neox, CacheArgs<T> ca) {
  extern __shared__ float smem[];
  const int64_t t = blockIdx.x;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  float* xs = smem + warp * D;
  const int half = rotary_dim / 2;
  const float* cs = cos_sin + (int64_t)positions[t] * rotary_dim;
  const int h = blockIdx.y * kHeadsPerBlock + warp;
  const int64_t slot = CACHE ? ca.slots[t] : -1;
  const int64_t width = (int64_t)num_kv_heads * D;
  if (CACHE && h >= num_heads + num_kv_heads) {
    // A v head: copied to the cache as vt_reshape_and_cache does.
    const int j = h - num_heads - num_kv_heads;
    if (slot < 0 || j >= num_kv_heads) return;
    const T* src = ca.v + t * ca.v_stride + (int64_t)j * D;
    T* dst = ca.v_cache + slot * width + (int64_t)j * D;
    for (int i = lane; i < D; i += 32) dst[i] = src[i];
    return;
  }
  if (h < num_heads + num_kv_heads) {
    const bool is_q = h < num_heads;
    T* x = is_q ? q + t * q_stride + (int64_t)h * D : k + t * k_stride + (int64_t)(h - num_heads) * D;
    // This k head's row of the token's cache slot, or null (q head, padding, no CACHE).
    T* kc = CACHE && !is_q && slot >= 0 ? ca.k_cache + slot * width + (int64_t)(h - num_heads) * D : nullptr;
    const W* w = is_q ? q_weight : k_weight;
    float ss = 0.f;
    for (int i = lane; i < D; i += 32) {
      const float v = to_f32(x[i]);
      xs[i] = v;
      ss += v * v;
    }
    const float inv = rsqrtf(warp_sum(ss) / (float)D + eps);
    for (int i = lane; i < D; i += 32) xs[i] = to_f32(from_f32<T>(xs[i] * inv * (to_f32(w[i]) + weight_offset)));
    __syncwarp();
    for (int i = lane; i < half; i += 32) {
      const int i1 = neox ? i : 2 * i, i2 = neox ? i + half : 2 * i + 1;
      const float c = cs[i], s = cs[half + i];
      const float x1 = xs[i1], x2 = xs[i2];
      const T y1 = from_f32<T>(x1 * c - x2 * s), y2 = from_f32<T>(x2 * c + x1 * s);
      x[i1] = y1;
      x[i2] = y2;
      if (CACHE && kc) {
        kc[i1] = y1;
        kc[i2] = y2;
      }
    }
    for (int i = rotary_dim + lane; i < D; i += 32) {
      const T y = from_f32<T>(xs[i]);
      x[i] = y;
      if (CACHE && kc) kc[i] = y;
    }
  }
}

// The checks and the launch of both ops; ca.slots == nullptr: vt_qk_norm_rope.
template <bool CACHE>
int launch(const char* op, uint64_t q, uint64_t k, uint64_t q_weight, uint64_t k_weight, uint64_t positions, uint64_t cos_sin_cache,
           int64_t num_tokens, int64_t num_heads, int64_t num_kv_heads, int64_t head_dim, int64_t rotary_dim, int64_t q_stride,
           int64_t k_stride, float eps, float weight_offset, int is_neox, int wdt, int act, const CacheArgs<void>& cache) {
  if (num_tokens < 0 || num_heads <= 0 || num_kv_heads <= 0 || head_dim <= 0 || head_dim > 1024)
    return set_error("%s: bad shape num_tokens=%lld num_heads=%lld num_kv_heads=%lld head_dim=%lld", op, (long long)num_tokens,
                     (long long)num_heads, (long long)num_kv_heads, (long long)head_dim);
  if (rotary_dim <= 0 || rotary_dim > head_dim || rotary_dim % 2)
    return set_error("%s: rotary_dim %lld must be even and in (0, head_dim=%lld]", op, (long long)rotary_dim, (long long)head_dim);
  if (q_stride < num_heads * head_dim || k_stride < num_kv_heads * head_dim)
    return set_error("%s: row strides (q %lld, k %lld) are shorter than a row of heads", op, (long long)q_stride, (long long)k_stride);
  if (CACHE && cache.v_stride < num_kv_heads * head_dim)
    return set_error("%s: v row stride %lld is shorter than a row of heads", op, (long long)cache.v_stride);
  if (num_tokens == 0) return 0;
  const int64_t heads = num_heads + (CACHE ? 2 : 1) * num_kv_heads;
  if (heads > 65535 * kHeadsPerBlock) return set_error("%s: too many heads", op);
  if (num_tokens > 2147483647LL) return set_error("%s: %lld tokens is too many", op, (long long)num_tokens);
  VT_READY();
  return dispatch_float(act, op, [&](auto a) {
    using T = typename decltype(a)::type;
    return dispatch_float(wdt, op, [&](auto b) {
      using W = typename decltype(b)::type;
      const CacheArgs<T> ca{(const T*)cache.v, (T*)cache.k_cache, (T*)cache.v_cache, cache.slots, cache.v_stride};
      const dim3 grid((unsigned)num_tokens, (unsigned)((heads + kHeadsPerBlock - 1) / kHeadsPerBlock));
      const size_t smem = (size_t)kHeadsPerBlock * head_dim * sizeof(float);
      qk_norm_rope_kernel<T, W, CACHE><<<grid, 32 * kHeadsPerBlock, smem, g.stream>>>(
          (T*)(uintptr_t)q, (T*)(uintptr_t)k, (const W*)(uintptr_t)q_weight, (const W*)(uintptr_t)k_weight, (const int*)(uintptr_t)positions,
          (const float*)(uintptr_t)cos_sin_cache, (int)num_heads, (int)num_kv_heads, (int)head_dim, (int)rotary_dim, q_stride, k_stride, eps,
          weight_offset, is_neox != 0, ca);
      return check_launch(op);
    });
  });
}

}  // namespace

extern "C" int vt_qk_norm_rope(uint64_t q, uint64_t k, uint64_t q_weight, uint64_t k_weight, uint64_t positions, uint64_t cos_sin_cache,
                               int64_t num_tokens, int64_t num_heads, int64_t num_kv_heads, int64_t head_dim, int64_t rotary_dim,
                               int64_t q_stride, int64_t k_stride, float eps, float weight_offset, int is_neox, int wdt, int act) {
  return launch<false>("vt_qk_norm_rope", q, k, q_weight, k_weight, positions, cos_sin_cache, num_tokens, num_heads, num_kv_heads, head_dim,
                       rotary_dim, q_stride, k_stride, eps, weight_offset, is_neox, wdt, act, CacheArgs<void>{});
}

extern "C" int vt_qk_norm_rope_and_cache(uint64_t q, uint64_t k, uint64_t v, uint64_t q_weight, uint64_t k_weight, uint64_t positions,
                                         uint64_t cos_sin_cache, uint64_t k_cache, uint64_t v_cache, uint64_t slot_mapping,
                                         int64_t num_tokens, int64_t num_heads, int64_t num_kv_heads, int64_t head_dim, int64_t rotary_dim,
                                         int64_t q_stride, int64_t k_stride, int64_t v_stride, float eps, float weight_offset, int is_neox,
                                         int wdt, int act) {
  const CacheArgs<void> cache{(const void*)(uintptr_t)v, (void*)(uintptr_t)k_cache, (void*)(uintptr_t)v_cache,
                              (const int*)(uintptr_t)slot_mapping, v_stride};
  return launch<true>("vt_qk_norm_rope_and_cache", q, k, q_weight, k_weight, positions, cos_sin_cache, num_tokens, num_heads, num_kv_heads,
                      head_dim, rotary_dim, q_stride, k_stride, eps, weight_offset, is_neox, wdt, act, cache);
}
