// Row gathers and elementwise ops: embedding, gather_rows, add, the gated
// activations and gelu.
#include <initializer_list>

#include "simd.h"

namespace vt {
namespace {

template <class W>
void embed_rows(float* out, const W* weight, const int32_t* ids, int64_t num_tokens, int64_t hidden, float scale) {
  parallel_for(num_tokens, double(hidden), [&](int64_t b, int64_t e) {
    vf s = vset1(scale);
    for (int64_t t = b; t < e; t++) {
      const W* w = weight + int64_t(ids[t]) * hidden;
      float* o = out + t * hidden;
      int64_t k = 0;
      for (; k + VL <= hidden; k += VL) vstore(o + k, vmul(vloadw(w + k), s));
      if (k < hidden) vstore_n(o + k, vmul(vloadw_n(w + k, int(hidden - k)), s), int(hidden - k));
    }
  });
}

// Applies f to n values in VL-wide pieces (tail zero-padded), chunked over threads.
template <class F>
void map_values(int64_t n, double cost, F f) {
  parallel_for(n, cost, [&](int64_t b, int64_t e) {
    int64_t i = b;
    for (; i + VL <= e; i += VL) f(i, VL);
    if (i < e) f(i, int(e - i));
  });
}

inline vf silu(vf g) { return vdiv(g, vadd(vset1(1.0f), vexp(vsub(vzero(), g)))); }

inline vf gelu_tanh(vf x) {
  const vf c = vset1(0.7978845608028654f), a = vset1(0.044715f), half = vset1(0.5f);
  vf inner = vmul(c, vfma(vmul(a, x), vmul(x, x), x));
  return vmul(vmul(half, x), vadd(vset1(1.0f), vtanh(inner)));
}

// out[t, :] = act(x[t, :d]) * x[t, d:]   x [num_tokens, 2d], out [num_tokens, d]
// The flat range of outputs is cut into chunks; each chunk is walked row by row.
template <vf (*Act)(vf)>
void gated(float* out, const float* x, int64_t num_tokens, int64_t d) {
  parallel_for(num_tokens * d, 8, [&](int64_t b, int64_t e) {
    for (int64_t t = b / d; t * d < e; t++) {
      int64_t j = b > t * d ? b - t * d : 0, end = e - t * d < d ? e - t * d : d;
      const float* g = x + t * 2 * d;
      float* o = out + t * d;
      for (; j + VL <= end; j += VL) vstore(o + j, vmul(Act(vload(g + j)), vload(g + d + j)));
      if (j < end) {
        int m = int(end - j);
        vstore_n(o + j, vmul(Act(vload_n(g + j, m)), vload_n(g + d + j, m)), m);
      }
    }
  });
}

int check_ptrs(const char* op, std::initializer_list<uint64_t> ps) {
  for (uint64_t p : ps)
    if (!p) return set_error("%s: a required tensor address is null", op);
  return 0;
}

}  // namespace
}  // namespace vt

using namespace vt;

extern "C" {

int vt_embedding(uint64_t out, uint64_t weight, uint64_t ids, int64_t num_tokens, int64_t hidden, float scale, int wdt,
                 int act) {
  VT_CAPTURE(vt_embedding(out, weight, ids, num_tokens, hidden, scale, wdt, act));
  if (check_act("vt_embedding", act) || check_wdt("vt_embedding", wdt)) return 1;
  if (num_tokens < 0 || hidden <= 0) return set_error("vt_embedding: bad shape num_tokens=%lld hidden=%lld", (long long)num_tokens, (long long)hidden);
  if (num_tokens == 0) return 0;
  if (check_ptrs("vt_embedding", {out, weight, ids})) return 1;
  const int32_t* id = ptr<const int32_t>(ids);
  for (int64_t t = 0; t < num_tokens; t++)
    if (id[t] < 0) return set_error("vt_embedding: token id %d at position %lld is negative", id[t], (long long)t);
  float* o = ptr<float>(out);
  if (wdt == VT_F32) embed_rows(o, ptr<const float>(weight), id, num_tokens, hidden, scale);
  else if (wdt == VT_BF16) embed_rows(o, ptr<const bf16>(weight), id, num_tokens, hidden, scale);
  else embed_rows(o, ptr<const f16>(weight), id, num_tokens, hidden, scale);
  return 0;
}

int vt_gather_rows(uint64_t out, uint64_t x, uint64_t rows, int64_t n, int64_t width, int act) {
  VT_CAPTURE(vt_gather_rows(out, x, rows, n, width, act));
  if (check_act("vt_gather_rows", act)) return 1;
  if (n < 0 || width < 0) return set_error("vt_gather_rows: bad shape n=%lld width=%lld", (long long)n, (long long)width);
  if (n == 0 || width == 0) return 0;
  if (check_ptrs("vt_gather_rows", {out, x, rows})) return 1;
  const int32_t* r = ptr<const int32_t>(rows);
  for (int64_t i = 0; i < n; i++)
    if (r[i] < 0) return set_error("vt_gather_rows: row index %d at %lld is negative", r[i], (long long)i);
  float* o = ptr<float>(out);
  const float* src = ptr<const float>(x);
  for (int64_t i = 0; i < n; i++) memmove(o + i * width, src + int64_t(r[i]) * width, width * sizeof(float));
  return 0;
}

int vt_add(uint64_t out, uint64_t a, uint64_t b, int64_t n, int act) {
  VT_CAPTURE(vt_add(out, a, b, n, act));
  if (check_act("vt_add", act)) return 1;
  if (n < 0) return set_error("vt_add: negative length %lld", (long long)n);
  if (n == 0) return 0;
  if (check_ptrs("vt_add", {out, a, b})) return 1;
  float* o = ptr<float>(out);
  const float *pa = ptr<const float>(a), *pb = ptr<const float>(b);
  map_values(n, 1, [&](int64_t i, int m) { vstore_n(o + i, vadd(vload_n(pa + i, m), vload_n(pb + i, m)), m); });
  return 0;
}

int vt_silu_and_mul(uint64_t out, uint64_t x, int64_t num_tokens, int64_t d, int act) {
  VT_CAPTURE(vt_silu_and_mul(out, x, num_tokens, d, act));
  if (check_act("vt_silu_and_mul", act)) return 1;
  if (num_tokens < 0 || d <= 0) return set_error("vt_silu_and_mul: bad shape num_tokens=%lld d=%lld", (long long)num_tokens, (long long)d);
  if (num_tokens == 0) return 0;
  if (check_ptrs("vt_silu_and_mul", {out, x})) return 1;
  gated<silu>(ptr<float>(out), ptr<const float>(x), num_tokens, d);
  return 0;
}

int vt_gelu_tanh_and_mul(uint64_t out, uint64_t x, int64_t num_tokens, int64_t d, int act) {
  VT_CAPTURE(vt_gelu_tanh_and_mul(out, x, num_tokens, d, act));
  if (check_act("vt_gelu_tanh_and_mul", act)) return 1;
  if (num_tokens < 0 || d <= 0) return set_error("vt_gelu_tanh_and_mul: bad shape num_tokens=%lld d=%lld", (long long)num_tokens, (long long)d);
  if (num_tokens == 0) return 0;
  if (check_ptrs("vt_gelu_tanh_and_mul", {out, x})) return 1;
  gated<gelu_tanh>(ptr<float>(out), ptr<const float>(x), num_tokens, d);
  return 0;
}

int vt_gelu_tanh(uint64_t out, uint64_t x, int64_t n, int act) {
  VT_CAPTURE(vt_gelu_tanh(out, x, n, act));
  if (check_act("vt_gelu_tanh", act)) return 1;
  if (n < 0) return set_error("vt_gelu_tanh: negative length %lld", (long long)n);
  if (n == 0) return 0;
  if (check_ptrs("vt_gelu_tanh", {out, x})) return 1;
  float* o = ptr<float>(out);
  const float* px = ptr<const float>(x);
  map_values(n, 8, [&](int64_t i, int m) { vstore_n(o + i, gelu_tanh(vload_n(px + i, m)), m); });
  return 0;
}

int vt_scale_softcap(uint64_t out, uint64_t x, int64_t n, float scale, float soft_cap, int act) {
  VT_CAPTURE(vt_scale_softcap(out, x, n, scale, soft_cap, act));
  if (check_act("vt_scale_softcap", act)) return 1;
  if (n < 0) return set_error("vt_scale_softcap: negative length %lld", (long long)n);
  if (n == 0) return 0;
  if (check_ptrs("vt_scale_softcap", {out, x})) return 1;
  float* o = ptr<float>(out);
  const float* px = ptr<const float>(x);
  const vf s = vset1(scale);
  if (soft_cap > 0.f) {
    const vf c = vset1(soft_cap), inv = vset1(1.0f / soft_cap);
    map_values(n, 8, [&](int64_t i, int m) { vstore_n(o + i, vmul(c, vtanh(vmul(vmul(vload_n(px + i, m), s), inv))), m); });
  } else {
    map_values(n, 1, [&](int64_t i, int m) { vstore_n(o + i, vmul(vload_n(px + i, m), s), m); });
  }
  return 0;
}

}  // extern "C"
