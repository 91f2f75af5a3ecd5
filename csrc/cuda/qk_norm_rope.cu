// vt_qk_norm_rope: Qwen3's (and Gemma 3's) per-head q/k RMSNorm followed by the
// rotary embedding, in place on the fused qkv projection's rows, in one launch
// (was: two separate q and k GEMMs so that the norms saw contiguous rows, two norm
// launches and a rope launch). csrc/cpu/rope.cpp is the CPU twin.
// NOTE: the normalized value is rounded to the activation dtype before the rotation,
// as the separate norm kernel's output was, so the result is the two-kernel path's.
#include "common.cuh"

using namespace vt;

namespace {

// grid (tokens, ceil(heads / 8)), 8 warps a block, one warp per head (q heads, then k
// heads): every head of a decode token in flight at once. smem: 8 * D floats.
constexpr int kHeadsPerBlock = 8;

template <typename T, typename W>
__global__ void qk_norm_rope_kernel(T* q, T* k, const W* q_weight, const W* k_weight, const int* positions, const float* cos_sin,
                                    int num_heads, int num_kv_heads, int D, int rotary_dim, int64_t q_stride, int64_t k_stride, float eps,
                                    float weight_offset, bool neox) {
  extern __shared__ float smem[];
  const int64_t t = blockIdx.x;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  float* xs = smem + warp * D;
  const int half = rotary_dim / 2;
  const float* cs = cos_sin + (int64_t)positions[t] * rotary_dim;
  const int h = blockIdx.y * kHeadsPerBlock + warp;
  if (h < num_heads + num_kv_heads) {
    const bool is_q = h < num_heads;
    T* x = is_q ? q + t * q_stride + (int64_t)h * D : k + t * k_stride + (int64_t)(h - num_heads) * D;
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
      x[i1] = from_f32<T>(x1 * c - x2 * s);
      x[i2] = from_f32<T>(x2 * c + x1 * s);
    }
    for (int i = rotary_dim + lane; i < D; i += 32) x[i] = from_f32<T>(xs[i]);
  }
}

}  // namespace

extern "C" int vt_qk_norm_rope(uint64_t q, uint64_t k, uint64_t q_weight, uint64_t k_weight, uint64_t positions, uint64_t cos_sin_cache,
                               int64_t num_tokens, int64_t num_heads, int64_t num_kv_heads, int64_t head_dim, int64_t rotary_dim,
                               int64_t q_stride, int64_t k_stride, float eps, float weight_offset, int is_neox, int wdt, int act) {
  if (num_tokens < 0 || num_heads <= 0 || num_kv_heads <= 0 || head_dim <= 0 || head_dim > 1024)
    return set_error("vt_qk_norm_rope: bad shape num_tokens=%lld num_heads=%lld num_kv_heads=%lld head_dim=%lld", (long long)num_tokens,
                     (long long)num_heads, (long long)num_kv_heads, (long long)head_dim);
  if (rotary_dim <= 0 || rotary_dim > head_dim || rotary_dim % 2)
    return set_error("vt_qk_norm_rope: rotary_dim %lld must be even and in (0, head_dim=%lld]", (long long)rotary_dim, (long long)head_dim);
  if (q_stride < num_heads * head_dim || k_stride < num_kv_heads * head_dim)
    return set_error("vt_qk_norm_rope: row strides (q %lld, k %lld) are shorter than a row of heads", (long long)q_stride, (long long)k_stride);
  if (num_tokens == 0) return 0;
  if (num_heads + num_kv_heads > 65535 * kHeadsPerBlock) return set_error("vt_qk_norm_rope: too many heads");
  if (num_tokens > 2147483647LL) return set_error("vt_qk_norm_rope: %lld tokens is too many", (long long)num_tokens);
  VT_READY();
  return dispatch_float(act, "vt_qk_norm_rope", [&](auto a) {
    using T = typename decltype(a)::type;
    return dispatch_float(wdt, "vt_qk_norm_rope", [&](auto b) {
      using W = typename decltype(b)::type;
      const int64_t heads = num_heads + num_kv_heads;
      const dim3 grid((unsigned)num_tokens, (unsigned)((heads + kHeadsPerBlock - 1) / kHeadsPerBlock));
      const size_t smem = (size_t)kHeadsPerBlock * head_dim * sizeof(float);
      qk_norm_rope_kernel<T, W><<<grid, 32 * kHeadsPerBlock, smem, g.stream>>>(
          (T*)(uintptr_t)q, (T*)(uintptr_t)k, (const W*)(uintptr_t)q_weight, (const W*)(uintptr_t)k_weight, (const int*)(uintptr_t)positions,
          (const float*)(uintptr_t)cos_sin_cache, (int)num_heads, (int)num_kv_heads, (int)head_dim, (int)rotary_dim, q_stride, k_stride, eps,
          weight_offset, is_neox != 0);
      return check_launch("vt_qk_norm_rope");
    });
  });
}
