// vt_rope (rotary embedding in place on q and k), vt_qk_norm_rope (per-head q/k
// RMSNorm, then the rotation) and vt_reshape_and_cache (writes each token's key and
// value into the paged cache).
#include "simd.h"

namespace vt {
namespace {

// Rotates one head in place. cos/sin: rotary_dim / 2 values each.
inline void rotate(float* x, const float* cos, const float* sin, int64_t half, bool neox) {
  if (neox) {
    int64_t i = 0;
    for (; i < half; i += VL) {
      int n = half - i < VL ? int(half - i) : VL;
      vf x1 = vload_n(x + i, n), x2 = vload_n(x + half + i, n), c = vload_n(cos + i, n), s = vload_n(sin + i, n);
      vstore_n(x + i, vsub(vmul(x1, c), vmul(x2, s)), n);
      vstore_n(x + half + i, vadd(vmul(x2, c), vmul(x1, s)), n);
    }
    return;
  }
  for (int64_t i = 0; i < half; i++) {
    float x1 = x[2 * i], x2 = x[2 * i + 1];
    x[2 * i] = x1 * cos[i] - x2 * sin[i];
    x[2 * i + 1] = x2 * cos[i] + x1 * sin[i];
  }
}

}  // namespace

void rms_norm_row(float* out, const float* x, uint64_t weight, int wdt, int64_t n, float eps, float offset);  // norm.cpp
}  // namespace vt

using namespace vt;

extern "C" {

int vt_rope(uint64_t q, uint64_t k, uint64_t positions, uint64_t cos_sin_cache, int64_t num_tokens, int64_t num_heads,
            int64_t num_kv_heads, int64_t head_dim, int64_t rotary_dim, int64_t q_stride, int64_t k_stride, int is_neox,
            int act) {
  VT_CAPTURE(vt_rope(q, k, positions, cos_sin_cache, num_tokens, num_heads, num_kv_heads, head_dim, rotary_dim, q_stride, k_stride, is_neox, act));
  if (check_act("vt_rope", act)) return 1;
  if (num_tokens < 0 || num_heads < 0 || num_kv_heads < 0 || head_dim <= 0)
    return set_error("vt_rope: bad shape num_tokens=%lld num_heads=%lld num_kv_heads=%lld head_dim=%lld", (long long)num_tokens,
                (long long)num_heads, (long long)num_kv_heads, (long long)head_dim);
  if (rotary_dim <= 0 || rotary_dim > head_dim || rotary_dim % 2)
    return set_error("vt_rope: rotary_dim %lld must be even and in (0, head_dim=%lld]", (long long)rotary_dim, (long long)head_dim);
  if ((num_heads && q_stride < num_heads * head_dim) || (num_kv_heads && k_stride < num_kv_heads * head_dim))
    return set_error("vt_rope: row strides (q %lld, k %lld) are shorter than a row of heads", (long long)q_stride, (long long)k_stride);
  if (num_tokens == 0) return 0;
  if ((num_heads && !q) || (num_kv_heads && !k) || !positions || !cos_sin_cache)
    return set_error("vt_rope: a required tensor address is null");
  const int32_t* pos = ptr<const int32_t>(positions);
  for (int64_t t = 0; t < num_tokens; t++)
    if (pos[t] < 0) return set_error("vt_rope: position %d of token %lld is negative", pos[t], (long long)t);
  float *pq = ptr<float>(q), *pk = ptr<float>(k);
  const float* cache = ptr<const float>(cos_sin_cache);
  int64_t half = rotary_dim / 2, heads = num_heads + num_kv_heads;
  parallel_for(num_tokens * heads, double(rotary_dim) * 3, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) {
      int64_t t = i / heads, h = i % heads;
      const float* cos = cache + int64_t(pos[t]) * rotary_dim;
      float* x = h < num_heads ? pq + t * q_stride + h * head_dim : pk + t * k_stride + (h - num_heads) * head_dim;
      rotate(x, cos, cos + half, half, is_neox != 0);
    }
  });
  return 0;
}

int vt_qk_norm_rope(uint64_t q, uint64_t k, uint64_t q_weight, uint64_t k_weight, uint64_t positions,
                    uint64_t cos_sin_cache, int64_t num_tokens, int64_t num_heads, int64_t num_kv_heads,
                    int64_t head_dim, int64_t rotary_dim, int64_t q_stride, int64_t k_stride, float eps,
                    float weight_offset, int is_neox, int wdt, int act) {
  VT_CAPTURE(vt_qk_norm_rope(q, k, q_weight, k_weight, positions, cos_sin_cache, num_tokens, num_heads, num_kv_heads, head_dim,
                             rotary_dim, q_stride, k_stride, eps, weight_offset, is_neox, wdt, act));
  if (check_act("vt_qk_norm_rope", act) || check_wdt("vt_qk_norm_rope", wdt)) return 1;
  if (num_tokens < 0 || num_heads <= 0 || num_kv_heads <= 0 || head_dim <= 0)
    return set_error("vt_qk_norm_rope: bad shape num_tokens=%lld num_heads=%lld num_kv_heads=%lld head_dim=%lld",
                     (long long)num_tokens, (long long)num_heads, (long long)num_kv_heads, (long long)head_dim);
  if (rotary_dim <= 0 || rotary_dim > head_dim || rotary_dim % 2)
    return set_error("vt_qk_norm_rope: rotary_dim %lld must be even and in (0, head_dim=%lld]", (long long)rotary_dim,
                     (long long)head_dim);
  if (q_stride < num_heads * head_dim || k_stride < num_kv_heads * head_dim)
    return set_error("vt_qk_norm_rope: row strides (q %lld, k %lld) are shorter than a row of heads", (long long)q_stride,
                     (long long)k_stride);
  if (num_tokens == 0) return 0;
  if (!q || !k || !q_weight || !k_weight || !positions || !cos_sin_cache)
    return set_error("vt_qk_norm_rope: a required tensor address is null");
  const int32_t* pos = ptr<const int32_t>(positions);
  for (int64_t t = 0; t < num_tokens; t++)
    if (pos[t] < 0) return set_error("vt_qk_norm_rope: position %d of token %lld is negative", pos[t], (long long)t);
  float *pq = ptr<float>(q), *pk = ptr<float>(k);
  const float* cache = ptr<const float>(cos_sin_cache);
  const int64_t half = rotary_dim / 2, heads = num_heads + num_kv_heads;
  parallel_for(num_tokens * heads, double(head_dim) * 6, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) {
      const int64_t t = i / heads, h = i % heads;
      const bool is_q = h < num_heads;
      float* x = is_q ? pq + t * q_stride + h * head_dim : pk + t * k_stride + (h - num_heads) * head_dim;
      rms_norm_row(x, x, is_q ? q_weight : k_weight, wdt, head_dim, eps, weight_offset);
      const float* cos = cache + int64_t(pos[t]) * rotary_dim;
      rotate(x, cos, cos + half, half, is_neox != 0);
    }
  });
  return 0;
}

int vt_reshape_and_cache(uint64_t key, uint64_t value, uint64_t k_cache, uint64_t v_cache, uint64_t slot_mapping,
                         int64_t num_tokens, int64_t num_kv_heads, int64_t head_dim, int64_t key_stride,
                         int64_t value_stride, int act) {
  VT_CAPTURE(vt_reshape_and_cache(key, value, k_cache, v_cache, slot_mapping, num_tokens, num_kv_heads, head_dim, key_stride, value_stride, act));
  if (check_act("vt_reshape_and_cache", act)) return 1;
  if (num_tokens < 0 || num_kv_heads <= 0 || head_dim <= 0)
    return set_error("vt_reshape_and_cache: bad shape num_tokens=%lld num_kv_heads=%lld head_dim=%lld", (long long)num_tokens,
                (long long)num_kv_heads, (long long)head_dim);
  int64_t width = num_kv_heads * head_dim;
  if (key_stride < width || value_stride < width)
    return set_error("vt_reshape_and_cache: row strides (key %lld, value %lld) are shorter than num_kv_heads * head_dim = %lld",
                (long long)key_stride, (long long)value_stride, (long long)width);
  if (num_tokens == 0) return 0;
  if (!key || !value || !k_cache || !v_cache || !slot_mapping)
    return set_error("vt_reshape_and_cache: a required tensor address is null");
  const int32_t* slots = ptr<const int32_t>(slot_mapping);
  const float *pk = ptr<const float>(key), *pv = ptr<const float>(value);
  float *kc = ptr<float>(k_cache), *vc = ptr<float>(v_cache);
  // Slot s holds [num_kv_heads, head_dim] at s * width, whatever the block size.
  parallel_for(num_tokens, double(width), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; t++) {
      if (slots[t] < 0) continue;
      int64_t s = slots[t];
      memcpy(kc + s * width, pk + t * key_stride, width * sizeof(float));
      memcpy(vc + s * width, pv + t * value_stride, width * sizeof(float));
    }
  });
  return 0;
}

}  // extern "C"
