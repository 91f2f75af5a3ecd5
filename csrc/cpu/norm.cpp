// RMSNorm and LayerNorm, each optionally fused with the residual add.
#include "simd.h"

namespace vt {
namespace {

// r = x (+ residual, written back); returns sum(r) and sum(r^2) lane-wise reduced.
// Leaves r in `row` (the residual buffer when present, else x itself).
inline const float* residual_row(const float* x, float* residual, int64_t hidden) {
  if (!residual) return x;
  int64_t k = 0;
  for (; k + VL <= hidden; k += VL) vstore(residual + k, vadd(vload(x + k), vload(residual + k)));
  if (k < hidden) {
    int n = int(hidden - k);
    vstore_n(residual + k, vadd(vload_n(x + k, n), vload_n(residual + k, n)), n);
  }
  return residual;
}

inline float sum_sq(const float* r, int64_t hidden, float center) {
  vf acc = vzero(), c = vset1(center);
  int64_t k = 0;
  for (; k + VL <= hidden; k += VL) {
    vf d = vsub(vload(r + k), c);
    acc = vfma(d, d, acc);
  }
  if (k < hidden) {
    int n = int(hidden - k);
    vf d = vsub(vload_n(r + k, n), c);
    d = vload_n(reinterpret_cast<const float*>(&d), n);  // zero the padding lanes
    acc = vfma(d, d, acc);
  }
  return vhsum(acc);
}

inline float sum(const float* r, int64_t hidden) {
  vf acc = vzero();
  int64_t k = 0;
  for (; k + VL <= hidden; k += VL) acc = vadd(acc, vload(r + k));
  if (k < hidden) acc = vadd(acc, vload_n(r + k, int(hidden - k)));
  return vhsum(acc);
}

// out = (r - mean) * inv * (w + offset) (+ bias)
template <class W>
inline void scale_row(float* out, const float* r, const W* w, const W* bias, int64_t hidden, float mean, float inv,
                      float offset) {
  vf m = vset1(mean), s = vset1(inv), off = vset1(offset);
  for (int64_t k = 0; k < hidden; k += VL) {
    int n = hidden - k < VL ? int(hidden - k) : VL;
    vf v = vmul(vmul(vsub(vload_n(r + k, n), m), s), vadd(vloadw_n(w + k, n), off));
    if (bias) v = vadd(v, vloadw_n(bias + k, n));
    vstore_n(out + k, v, n);
  }
}

template <class W>
void norm_rows(float* out, const float* x, float* residual, const W* weight, const W* bias, int64_t num_tokens,
               int64_t hidden, float eps, float offset, bool layer) {
  parallel_for(num_tokens, double(hidden) * 4, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; t++) {
      const float* r = residual_row(x + t * hidden, residual ? residual + t * hidden : nullptr, hidden);
      float mean = layer ? sum(r, hidden) / float(hidden) : 0.0f;
      float inv = 1.0f / sqrtf(sum_sq(r, hidden, mean) / float(hidden) + eps);
      scale_row(out + t * hidden, r, weight, bias, hidden, mean, inv, offset);
    }
  });
}

int run_norm(const char* op, uint64_t out, uint64_t x, uint64_t residual, uint64_t weight, uint64_t bias,
             int64_t num_tokens, int64_t hidden, float eps, float offset, int wdt, int act, bool layer) {
  if (check_act(op, act) || check_wdt(op, wdt)) return 1;
  if (num_tokens < 0 || hidden <= 0) return set_error("%s: bad shape num_tokens=%lld hidden=%lld", op, (long long)num_tokens, (long long)hidden);
  if (num_tokens == 0) return 0;
  if (!out || !x || !weight || (layer && !bias)) return set_error("%s: a required tensor address is null", op);
  float *o = ptr<float>(out), *res = ptr<float>(residual);
  const float* px = ptr<const float>(x);
  if (wdt == VT_F32)
    norm_rows(o, px, res, ptr<const float>(weight), ptr<const float>(bias), num_tokens, hidden, eps, offset, layer);
  else if (wdt == VT_BF16)
    norm_rows(o, px, res, ptr<const bf16>(weight), ptr<const bf16>(bias), num_tokens, hidden, eps, offset, layer);
  else
    norm_rows(o, px, res, ptr<const f16>(weight), ptr<const f16>(bias), num_tokens, hidden, eps, offset, layer);
  return 0;
}

}  // namespace

// One row's RMSNorm, as vt_rms_norm computes it (vt_qk_norm_rope's norm).
void rms_norm_row(float* out, const float* x, uint64_t weight, int wdt, int64_t n, float eps, float offset) {
  const float inv = 1.0f / sqrtf(sum_sq(x, n, 0.0f) / float(n) + eps);
  if (wdt == VT_F32) scale_row(out, x, ptr<const float>(weight), (const float*)nullptr, n, 0.0f, inv, offset);
  else if (wdt == VT_BF16) scale_row(out, x, ptr<const bf16>(weight), (const bf16*)nullptr, n, 0.0f, inv, offset);
  else scale_row(out, x, ptr<const f16>(weight), (const f16*)nullptr, n, 0.0f, inv, offset);
}
}  // namespace vt

using namespace vt;

extern "C" {

int vt_rms_norm(uint64_t out, uint64_t x, uint64_t residual, uint64_t weight, int64_t num_tokens, int64_t hidden,
                float eps, float weight_offset, int wdt, int act) {
  VT_CAPTURE(vt_rms_norm(out, x, residual, weight, num_tokens, hidden, eps, weight_offset, wdt, act));
  return run_norm("vt_rms_norm", out, x, residual, weight, 0, num_tokens, hidden, eps, weight_offset, wdt, act, false);
}

int vt_layer_norm(uint64_t out, uint64_t x, uint64_t residual, uint64_t weight, uint64_t bias, int64_t num_tokens,
                  int64_t hidden, float eps, int wdt, int act) {
  VT_CAPTURE(vt_layer_norm(out, x, residual, weight, bias, num_tokens, hidden, eps, wdt, act));
  return run_norm("vt_layer_norm", out, x, residual, weight, bias, num_tokens, hidden, eps, 0.0f, wdt, act, true);
}

}  // extern "C"
