// RMSNorm and LayerNorm, each optionally fused with the residual add: one block
// per row, 16-byte loads when the hidden size and addresses allow.
#include "common.cuh"

using namespace vt;

namespace {

// Pass 1 of both norms: r = x (+ residual, rounded to T and stored back). Returns
// the row's values for this thread's column c in f.
template <typename T, int V>
__device__ __forceinline__ void load_row(const T* xr, T* rr, int64_t c, float (&f)[V]) {
  load_v<T, V>(xr + c, f);
  if (rr) {
    float r[V];
    load_v<T, V>(rr + c, r);
#pragma unroll
    for (int i = 0; i < V; i++) f[i] = to_f32(from_f32<T>(f[i] + r[i]));
    store_v<T, V>(rr + c, f);
  }
}

// x, out [rows, hidden]; residual [rows, hidden] or null; weight [hidden]
template <typename T, typename W, int V>
__global__ void rms_norm_kernel(T* out, const T* x, T* residual, const W* weight, int64_t hidden, float eps, float weight_offset) {
  int64_t row = blockIdx.x;
  const T* xr = x + row * hidden;
  T* rr = residual ? residual + row * hidden : nullptr;
  T* orow = out + row * hidden;
  float ss = 0.f;
  for (int64_t c = (int64_t)threadIdx.x * V; c < hidden; c += (int64_t)blockDim.x * V) {
    float f[V];
    load_row<T, V>(xr, rr, c, f);
#pragma unroll
    for (int i = 0; i < V; i++) ss += f[i] * f[i];
  }
  float inv = rsqrtf(block_sum(ss) / (float)hidden + eps);
  // Each thread re-reads only the columns it read (or wrote) above, so out may alias x.
  const T* src = rr ? rr : xr;
  for (int64_t c = (int64_t)threadIdx.x * V; c < hidden; c += (int64_t)blockDim.x * V) {
    float f[V], w[V];
    load_v<T, V>(src + c, f);
    load_v<W, V>(weight + c, w);
#pragma unroll
    for (int i = 0; i < V; i++) f[i] = f[i] * inv * (w[i] + weight_offset);
    store_v<T, V>(orow + c, f);
  }
}

template <typename T, typename W, int V>
__global__ void layer_norm_kernel(T* out, const T* x, T* residual, const W* weight, const W* bias, int64_t hidden, float eps) {
  int64_t row = blockIdx.x;
  const T* xr = x + row * hidden;
  T* rr = residual ? residual + row * hidden : nullptr;
  T* orow = out + row * hidden;
  float s = 0.f;
  for (int64_t c = (int64_t)threadIdx.x * V; c < hidden; c += (int64_t)blockDim.x * V) {
    float f[V];
    load_row<T, V>(xr, rr, c, f);
#pragma unroll
    for (int i = 0; i < V; i++) s += f[i];
  }
  const T* src = rr ? rr : xr;
  float mean = block_sum(s) / (float)hidden;
  float ss = 0.f;
  for (int64_t c = (int64_t)threadIdx.x * V; c < hidden; c += (int64_t)blockDim.x * V) {
    float f[V];
    load_v<T, V>(src + c, f);
#pragma unroll
    for (int i = 0; i < V; i++) ss += (f[i] - mean) * (f[i] - mean);
  }
  float inv = rsqrtf(block_sum(ss) / (float)hidden + eps);
  for (int64_t c = (int64_t)threadIdx.x * V; c < hidden; c += (int64_t)blockDim.x * V) {
    float f[V], w[V], b[V];
    load_v<T, V>(src + c, f);
    load_v<W, V>(weight + c, w);
    if (bias) load_v<W, V>(bias + c, b);
#pragma unroll
    for (int i = 0; i < V; i++) f[i] = (f[i] - mean) * inv * w[i] + (bias ? b[i] : 0.f);
    store_v<T, V>(orow + c, f);
  }
}

template <typename Launch>
int norm_dispatch(const char* op, uint64_t out, uint64_t x, uint64_t residual, uint64_t weight, uint64_t bias, int64_t num_tokens,
                  int64_t hidden, int wdt, int act, Launch&& launch) {
  if (num_tokens <= 0 || hidden <= 0) return 0;
  if (num_tokens > 2147483647LL) return set_error("%s: too many rows (%lld)", op, (long long)num_tokens);
  VT_READY();
  return dispatch_float(act, op, [&](auto a) {
    using T = typename decltype(a)::type;
    return dispatch_float(wdt, op, [&](auto w) {
      using W = typename decltype(w)::type;
      bool vec = hidden % 8 == 0 && aligned_to(out, 8 * sizeof(T)) && aligned_to(x, 8 * sizeof(T)) &&
                 aligned_to(residual, 8 * sizeof(T)) && aligned_to(weight, 8 * sizeof(W)) && aligned_to(bias, 8 * sizeof(W));
      int64_t units = vec ? hidden / 8 : hidden;
      int threads = units >= 512 ? 512 : (int)((units + 31) / 32 * 32);
      if (vec) launch(Tag<T>{}, Tag<W>{}, std::integral_constant<int, 8>{}, (unsigned)num_tokens, threads);
      else launch(Tag<T>{}, Tag<W>{}, std::integral_constant<int, 1>{}, (unsigned)num_tokens, threads);
      return check_launch(op);
    });
  });
}

}  // namespace

extern "C" {

int vt_rms_norm(uint64_t out, uint64_t x, uint64_t residual, uint64_t weight, int64_t num_tokens, int64_t hidden, float eps,
                float weight_offset, int wdt, int act) {
  return norm_dispatch("vt_rms_norm", out, x, residual, weight, 0, num_tokens, hidden, wdt, act,
                       [&](auto t, auto w, auto v, unsigned rows, int threads) {
                         using T = typename decltype(t)::type;
                         using W = typename decltype(w)::type;
                         rms_norm_kernel<T, W, decltype(v)::value><<<rows, threads, 0, g.stream>>>(
                             (T*)out, (const T*)x, (T*)residual, (const W*)weight, hidden, eps, weight_offset);
                       });
}

int vt_layer_norm(uint64_t out, uint64_t x, uint64_t residual, uint64_t weight, uint64_t bias, int64_t num_tokens, int64_t hidden,
                  float eps, int wdt, int act) {
  return norm_dispatch("vt_layer_norm", out, x, residual, weight, bias, num_tokens, hidden, wdt, act,
                       [&](auto t, auto w, auto v, unsigned rows, int threads) {
                         using T = typename decltype(t)::type;
                         using W = typename decltype(w)::type;
                         layer_norm_kernel<T, W, decltype(v)::value><<<rows, threads, 0, g.stream>>>(
                             (T*)out, (const T*)x, (T*)residual, (const W*)weight, (const W*)bias, hidden, eps);
                       });
}

}  // extern "C"
