// vt_rope (rotary embedding in place on q and k), vt_qk_norm_rope (per-head q/k
// RMSNorm, then the rotation), vt_reshape_and_cache (writes each token's key and
// value into the paged cache), and vt_rope_and_cache / vt_qk_norm_rope_and_cache
// (the rotation, then the cache write of each k head and its v head, in one pass).
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

// Where the fused ops put each token's k and v: the paged cache, at the token's slot.
struct CacheOut {
  const float* v;        // num_tokens rows of num_kv_heads * head_dim, v_stride apart
  float* k_cache;        // [num_blocks * block_size, num_kv_heads * head_dim]
  float* v_cache;        // same
  const int32_t* slots;  // [num_tokens]; a negative slot (padding) writes nothing
  int64_t v_stride;
};

// What vt_rope / vt_qk_norm_rope take; norm false: no norm (vt_rope, weights unused).
struct RopeArgs {
  bool norm;
  uint64_t q, k, q_weight, k_weight, positions, cos_sin_cache;
  int64_t num_tokens, num_heads, num_kv_heads, head_dim, rotary_dim, q_stride, k_stride;
  float eps, weight_offset;
  int is_neox, wdt;
};

}  // namespace

void rms_norm_row(float* out, const float* x, uint64_t weight, int wdt, int64_t n, float eps, float offset);  // norm.cpp

namespace {

// Each q and k head of each token: normalized when a.norm (vt_qk_norm_rope's
// norm), rotated, and with `out`, the k head, once rotated, and its v head copied to
// the cache in the same task.
// NOTE: the fused ops run exactly the unfused ops' arithmetic then a copy, so their
// q, k and cache bits are those of the op followed by vt_reshape_and_cache.
int rope_heads(const char* op, const RopeArgs& a, const CacheOut* out) {
  const bool norm = a.norm;
  const int64_t min_heads = norm || out ? 1 : 0;
  if (a.num_tokens < 0 || a.num_heads < min_heads || a.num_kv_heads < min_heads || a.head_dim <= 0)
    return set_error("%s: bad shape num_tokens=%lld num_heads=%lld num_kv_heads=%lld head_dim=%lld", op, (long long)a.num_tokens,
                     (long long)a.num_heads, (long long)a.num_kv_heads, (long long)a.head_dim);
  if (a.rotary_dim <= 0 || a.rotary_dim > a.head_dim || a.rotary_dim % 2)
    return set_error("%s: rotary_dim %lld must be even and in (0, head_dim=%lld]", op, (long long)a.rotary_dim, (long long)a.head_dim);
  if ((a.num_heads && a.q_stride < a.num_heads * a.head_dim) || (a.num_kv_heads && a.k_stride < a.num_kv_heads * a.head_dim))
    return set_error("%s: row strides (q %lld, k %lld) are shorter than a row of heads", op, (long long)a.q_stride, (long long)a.k_stride);
  const int64_t width = a.num_kv_heads * a.head_dim;
  if (out && out->v_stride < width)
    return set_error("%s: v row stride %lld is shorter than num_kv_heads * head_dim = %lld", op, (long long)out->v_stride, (long long)width);
  if (a.num_tokens == 0) return 0;
  if ((a.num_heads && !a.q) || (a.num_kv_heads && !a.k) || !a.positions || !a.cos_sin_cache || (norm && (!a.q_weight || !a.k_weight)) ||
      (out && (!out->v || !out->k_cache || !out->v_cache || !out->slots)))
    return set_error("%s: a required tensor address is null", op);
  const int32_t* pos = ptr<const int32_t>(a.positions);
  for (int64_t t = 0; t < a.num_tokens; t++)
    if (pos[t] < 0) return set_error("%s: position %d of token %lld is negative", op, pos[t], (long long)t);
  float *pq = ptr<float>(a.q), *pk = ptr<float>(a.k);
  const float* cache = ptr<const float>(a.cos_sin_cache);
  const int64_t D = a.head_dim, half = a.rotary_dim / 2, heads = a.num_heads + a.num_kv_heads;
  const double cost = (norm ? double(D) * 6 : double(a.rotary_dim) * 3) + (out ? double(D) * 2 : 0);
  parallel_for(a.num_tokens * heads, cost, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) {
      const int64_t t = i / heads, h = i % heads;
      const bool is_q = h < a.num_heads;
      float* x = is_q ? pq + t * a.q_stride + h * D : pk + t * a.k_stride + (h - a.num_heads) * D;
      if (norm) rms_norm_row(x, x, is_q ? a.q_weight : a.k_weight, a.wdt, D, a.eps, a.weight_offset);
      const float* cos = cache + int64_t(pos[t]) * a.rotary_dim;
      rotate(x, cos, cos + half, half, a.is_neox != 0);
      if (!out || is_q || out->slots[t] < 0) continue;
      // Slot s holds [num_kv_heads, head_dim] at s * width, whatever the block size.
      const int64_t j = h - a.num_heads, dst = int64_t(out->slots[t]) * width + j * D;
      memcpy(out->k_cache + dst, x, D * sizeof(float));
      memcpy(out->v_cache + dst, out->v + t * out->v_stride + j * D, D * sizeof(float));
    }
  });
  return 0;
}

}  // namespace
}  // namespace vt

using namespace vt;

extern "C" {

int vt_rope(uint64_t q, uint64_t k, uint64_t positions, uint64_t cos_sin_cache, int64_t num_tokens, int64_t num_heads,
            int64_t num_kv_heads, int64_t head_dim, int64_t rotary_dim, int64_t q_stride, int64_t k_stride, int is_neox,
            int act) {
  VT_CAPTURE(vt_rope(q, k, positions, cos_sin_cache, num_tokens, num_heads, num_kv_heads, head_dim, rotary_dim, q_stride, k_stride, is_neox, act));
  if (check_act("vt_rope", act)) return 1;
  const RopeArgs a{false, q, k, 0, 0, positions, cos_sin_cache, num_tokens, num_heads, num_kv_heads, head_dim, rotary_dim, q_stride, k_stride,
                   0.f, 0.f, is_neox, VT_F32};
  return rope_heads("vt_rope", a, nullptr);
}

int vt_qk_norm_rope(uint64_t q, uint64_t k, uint64_t q_weight, uint64_t k_weight, uint64_t positions,
                    uint64_t cos_sin_cache, int64_t num_tokens, int64_t num_heads, int64_t num_kv_heads,
                    int64_t head_dim, int64_t rotary_dim, int64_t q_stride, int64_t k_stride, float eps,
                    float weight_offset, int is_neox, int wdt, int act) {
  VT_CAPTURE(vt_qk_norm_rope(q, k, q_weight, k_weight, positions, cos_sin_cache, num_tokens, num_heads, num_kv_heads, head_dim,
                             rotary_dim, q_stride, k_stride, eps, weight_offset, is_neox, wdt, act));
  if (check_act("vt_qk_norm_rope", act) || check_wdt("vt_qk_norm_rope", wdt)) return 1;
  const RopeArgs a{true, q, k, q_weight, k_weight, positions, cos_sin_cache, num_tokens, num_heads, num_kv_heads, head_dim, rotary_dim,
                   q_stride, k_stride, eps, weight_offset, is_neox, wdt};
  return rope_heads("vt_qk_norm_rope", a, nullptr);
}

int vt_rope_and_cache(uint64_t q, uint64_t k, uint64_t v, uint64_t positions, uint64_t cos_sin_cache, uint64_t k_cache,
                      uint64_t v_cache, uint64_t slot_mapping, int64_t num_tokens, int64_t num_heads, int64_t num_kv_heads,
                      int64_t head_dim, int64_t rotary_dim, int64_t q_stride, int64_t k_stride, int64_t v_stride, int is_neox,
                      int act) {
  VT_CAPTURE(vt_rope_and_cache(q, k, v, positions, cos_sin_cache, k_cache, v_cache, slot_mapping, num_tokens, num_heads, num_kv_heads,
                               head_dim, rotary_dim, q_stride, k_stride, v_stride, is_neox, act));
  if (check_act("vt_rope_and_cache", act)) return 1;
  const RopeArgs a{false, q, k, 0, 0, positions, cos_sin_cache, num_tokens, num_heads, num_kv_heads, head_dim, rotary_dim, q_stride, k_stride,
                   0.f, 0.f, is_neox, VT_F32};
  const CacheOut out{ptr<const float>(v), ptr<float>(k_cache), ptr<float>(v_cache), ptr<const int32_t>(slot_mapping), v_stride};
  return rope_heads("vt_rope_and_cache", a, &out);
}

int vt_qk_norm_rope_and_cache(uint64_t q, uint64_t k, uint64_t v, uint64_t q_weight, uint64_t k_weight, uint64_t positions,
                              uint64_t cos_sin_cache, uint64_t k_cache, uint64_t v_cache, uint64_t slot_mapping, int64_t num_tokens,
                              int64_t num_heads, int64_t num_kv_heads, int64_t head_dim, int64_t rotary_dim, int64_t q_stride,
                              int64_t k_stride, int64_t v_stride, float eps, float weight_offset, int is_neox, int wdt, int act) {
  VT_CAPTURE(vt_qk_norm_rope_and_cache(q, k, v, q_weight, k_weight, positions, cos_sin_cache, k_cache, v_cache, slot_mapping, num_tokens,
                                       num_heads, num_kv_heads, head_dim, rotary_dim, q_stride, k_stride, v_stride, eps, weight_offset,
                                       is_neox, wdt, act));
  if (check_act("vt_qk_norm_rope_and_cache", act) || check_wdt("vt_qk_norm_rope_and_cache", wdt)) return 1;
  const RopeArgs a{true, q, k, q_weight, k_weight, positions, cos_sin_cache, num_tokens, num_heads, num_kv_heads, head_dim, rotary_dim,
                   q_stride, k_stride, eps, weight_offset, is_neox, wdt};
  const CacheOut out{ptr<const float>(v), ptr<float>(k_cache), ptr<float>(v_cache), ptr<const int32_t>(slot_mapping), v_stride};
  return rope_heads("vt_qk_norm_rope_and_cache", a, &out);
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
