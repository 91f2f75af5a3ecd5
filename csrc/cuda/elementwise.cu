// Row gathers (embedding, gather_rows), elementwise ops (add, gated activations,
// gelu), RoPE, the KV-cache write, and RoPE fused with the KV-cache write
// (vt_rope_and_cache). Each has an 8-wide vector path (16-byte accesses for 16-bit
// dtypes) when widths and addresses allow, else a scalar one.
#include "common.cuh"

using namespace vt;

namespace {

// out[t, :] = src[rows[t], :] * scale; rows outside [0, num_rows) give zeros.
//   grid: one block per output row
template <typename S, typename D, int V>
__global__ void gather_kernel(D* out, const S* src, const int* rows, int64_t width, int64_t num_rows, float scale) {
  int64_t t = blockIdx.x;
  int64_t r = rows[t];
  bool valid = r >= 0 && (num_rows < 0 || r < num_rows);
  for (int64_t c = (int64_t)threadIdx.x * V; c < width; c += (int64_t)blockDim.x * V) {
    float f[V];
    if (valid) {
      load_v<S, V>(src + r * width + c, f);
#pragma unroll
      for (int i = 0; i < V; i++) f[i] *= scale;
    } else {
#pragma unroll
      for (int i = 0; i < V; i++) f[i] = 0.f;
    }
    store_v<D, V>(out + t * width + c, f);
  }
}

template <typename S, typename D>
int launch_gather(const char* op, uint64_t out, uint64_t src, uint64_t rows, int64_t n, int64_t width, int64_t num_rows, float scale) {
  if (n <= 0 || width <= 0) return 0;
  if (n > 2147483647LL) return set_error("%s: %lld rows is more than one launch handles", op, (long long)n);
  bool vec = width % 8 == 0 && aligned_to(out, 8 * sizeof(D)) && aligned_to(src, 8 * sizeof(S));
  int64_t units = vec ? width / 8 : width;
  int threads = units >= 256 ? 256 : (int)((units + 31) / 32 * 32);
  if (vec) gather_kernel<S, D, 8><<<(unsigned)n, threads, 0, g.stream>>>((D*)out, (const S*)src, (const int*)rows, width, num_rows, scale);
  else gather_kernel<S, D, 1><<<(unsigned)n, threads, 0, g.stream>>>((D*)out, (const S*)src, (const int*)rows, width, num_rows, scale);
  return check_launch(op);
}

enum class Ew { Add, SiluMul, GeluMul, Gelu };

__device__ __forceinline__ float silu(float x) { return x / (1.f + __expf(-x)); }
__device__ __forceinline__ float gelu_tanh(float x) {
  const float k = 0.7978845608028654f;  // sqrt(2 / pi)
  return 0.5f * x * (1.f + tanhf(k * (x + 0.044715f * x * x * x)));
}

// Add/Gelu: out[i] = f(a[i], b[i]) over n values (rows = 1, d = n).
// SiluMul/GeluMul: a = x [rows, 2d] -> out [rows, d]; b unused.
template <typename T, Ew OP, int V>
__global__ void ew_kernel(T* out, const T* a, const T* b, int64_t rows, int64_t d) {
  int64_t units = d / V, total = rows * units;
  for (int64_t u = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; u < total; u += (int64_t)gridDim.x * blockDim.x) {
    int64_t r = u / units, c = (u - r * units) * V;
    float x[V], y[V];
    if constexpr (OP == Ew::SiluMul || OP == Ew::GeluMul) {
      load_v<T, V>(a + r * 2 * d + c, x);
      load_v<T, V>(a + r * 2 * d + d + c, y);
#pragma unroll
      for (int i = 0; i < V; i++) x[i] = (OP == Ew::SiluMul ? silu(x[i]) : gelu_tanh(x[i])) * y[i];
    } else if constexpr (OP == Ew::Add) {
      load_v<T, V>(a + c, x);
      load_v<T, V>(b + c, y);
#pragma unroll
      for (int i = 0; i < V; i++) x[i] += y[i];
    } else {
      load_v<T, V>(a + c, x);
#pragma unroll
      for (int i = 0; i < V; i++) x[i] = gelu_tanh(x[i]);
    }
    store_v<T, V>(out + r * d + c, x);
  }
}

template <Ew OP>
int launch_ew(const char* op, uint64_t out, uint64_t a, uint64_t b, int64_t rows, int64_t d, int act) {
  if (rows <= 0 || d <= 0) return 0;
  VT_READY();
  return dispatch_float(act, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    uint64_t al = 8 * sizeof(T);
    bool vec = d % 8 == 0 && aligned_to(out, al) && aligned_to(a, al) && (b == 0 || aligned_to(b, al));
    int64_t units = rows * (vec ? d / 8 : d);
    int grid = blocks_for(units, 256, (int64_t)g.sm_count * 16);
    if (vec) ew_kernel<T, OP, 8><<<grid, 256, 0, g.stream>>>((T*)out, (const T*)a, (const T*)b, rows, d);
    else ew_kernel<T, OP, 1><<<grid, 256, 0, g.stream>>>((T*)out, (const T*)a, (const T*)b, rows, d);
    return check_launch(op);
  });
}

// out[i] = x[i] * scale, then cap * tanh(out[i] / cap) when cap > 0.
template <typename T, int V>
__global__ void scale_softcap_kernel(T* out, const T* x, int64_t n, float scale, float cap) {
  const int64_t units = n / V;
  for (int64_t u = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; u < units; u += (int64_t)gridDim.x * blockDim.x) {
    float f[V];
    load_v<T, V>(x + u * V, f);
#pragma unroll
    for (int i = 0; i < V; i++) {
      f[i] *= scale;
      if (cap > 0.f) f[i] = cap * tanhf(f[i] / cap);
    }
    store_v<T, V>(out + u * V, f);
  }
}

// One block per token; threads walk (head, pair) of q then k.
// CACHE (vt_rope_and_cache): a rotated k pair also goes to the token's cache slot, then
// the block copies k's dims past rotary_dim and the v row there (16-byte units when
// vec); a negative slot (padding) writes no cache. k_cache, v_cache, v, slots unused
// otherwise.
// NOTE: vt_rope is rope_kernel<T, false>: one rotation code for both ops, so the fused
// op's q, k and cached k are the bits of vt_rope then vt_reshape_and_cache (a copy).
template <typename T, bool CACHE>
__global__ void rope_kernel(T* q, T* k, const int* positions, const float* cos_sin, int num_heads, int num_kv_heads, int head_dim,
                            int rotary_dim, int64_t q_stride, int64_t k_stride, bool neox, const T* v, T* k_cache, T* v_cache,
                            const int* slots, int64_t v_stride, bool vec) {
  int64_t t = blockIdx.x;
  int half = rotary_dim / 2;
  const float* cs = cos_sin + (int64_t)positions[t] * rotary_dim;
  const int64_t width = (int64_t)num_kv_heads * head_dim;
  const int64_t slot = CACHE ? slots[t] : -1;
  T* kc = CACHE && slot >= 0 ? k_cache + slot * width : nullptr;  // the token's [num_kv_heads, head_dim] cache row
  int total = (num_heads + num_kv_heads) * half;
  for (int w = threadIdx.x; w < total; w += blockDim.x) {
    int h = w / half, i = w - h * half;
    T* base = h < num_heads ? q + t * q_stride + (int64_t)h * head_dim : k + t * k_stride + (int64_t)(h - num_heads) * head_dim;
    int i1 = neox ? i : 2 * i, i2 = neox ? i + half : 2 * i + 1;
    float c = cs[i], s = cs[half + i];
    float x1 = to_f32(base[i1]), x2 = to_f32(base[i2]);
    const T y1 = from_f32<T>(x1 * c - x2 * s), y2 = from_f32<T>(x2 * c + x1 * s);
    base[i1] = y1;
    base[i2] = y2;
    if (CACHE && kc && h >= num_heads) {
      T* dst = kc + (int64_t)(h - num_heads) * head_dim;
      dst[i1] = y1;
      dst[i2] = y2;
    }
  }
  if constexpr (CACHE) {
    if (!kc) return;
    const int tail = head_dim - rotary_dim;  // dims rope leaves as they are (partial rotary)
    for (int w = threadIdx.x; w < num_kv_heads * tail; w += blockDim.x) {
      const int h = w / tail;
      const int64_t c = (int64_t)h * head_dim + rotary_dim + (w - h * tail);
      kc[c] = k[t * k_stride + c];
    }
    const T* src = v + t * v_stride;
    T* dst = v_cache + slot * width;
    if (vec) {
      for (int64_t u = threadIdx.x; u < width * (int64_t)sizeof(T) / 16; u += blockDim.x)
        reinterpret_cast<uint4*>(dst)[u] = reinterpret_cast<const uint4*>(src)[u];
    } else {
      for (int64_t c = threadIdx.x; c < width; c += blockDim.x) dst[c] = src[c];
    }
  }
}

// Grid-stride over (token, unit of V values of the num_kv_heads * head_dim row); V values
// of 16 bytes move as one uint4.
template <typename T, int V>
__global__ void cache_kernel(const T* key, const T* value, T* k_cache, T* v_cache, const int* slots, int64_t num_tokens, int64_t width,
                             int64_t key_stride, int64_t value_stride) {
  int64_t units = width / V, total = num_tokens * units;
  for (int64_t u = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; u < total; u += (int64_t)gridDim.x * blockDim.x) {
    int64_t t = u / units, c = (u - t * units) * V;
    int64_t slot = slots[t];
    if (slot < 0) continue;
    if constexpr (V * sizeof(T) == 16) {
      *reinterpret_cast<uint4*>(k_cache + slot * width + c) = *reinterpret_cast<const uint4*>(key + t * key_stride + c);
      *reinterpret_cast<uint4*>(v_cache + slot * width + c) = *reinterpret_cast<const uint4*>(value + t * value_stride + c);
    } else {
      k_cache[slot * width + c] = key[t * key_stride + c];
      v_cache[slot * width + c] = value[t * value_stride + c];
    }
  }
}

}  // namespace

extern "C" {

int vt_embedding(uint64_t out, uint64_t weight, uint64_t ids, int64_t num_tokens, int64_t hidden, float scale, int wdt, int act) {
  VT_READY();
  return dispatch_float(wdt, "vt_embedding", [&](auto w) {
    using S = typename decltype(w)::type;
    return dispatch_float(act, "vt_embedding", [&](auto a) {
      using D = typename decltype(a)::type;
      return launch_gather<S, D>("vt_embedding", out, weight, ids, num_tokens, hidden, -1, scale);
    });
  });
}

int vt_gather_rows(uint64_t out, uint64_t x, uint64_t rows, int64_t n, int64_t width, int act) {
  VT_READY();
  return dispatch_float(act, "vt_gather_rows", [&](auto a) {
    using T = typename decltype(a)::type;
    return launch_gather<T, T>("vt_gather_rows", out, x, rows, n, width, -1, 1.f);
  });
}

int vt_add(uint64_t out, uint64_t a, uint64_t b, int64_t n, int act) { return launch_ew<Ew::Add>("vt_add", out, a, b, 1, n, act); }

int vt_silu_and_mul(uint64_t out, uint64_t x, int64_t num_tokens, int64_t d, int act) {
  return launch_ew<Ew::SiluMul>("vt_silu_and_mul", out, x, 0, num_tokens, d, act);
}

int vt_gelu_tanh_and_mul(uint64_t out, uint64_t x, int64_t num_tokens, int64_t d, int act) {
  return launch_ew<Ew::GeluMul>("vt_gelu_tanh_and_mul", out, x, 0, num_tokens, d, act);
}

int vt_gelu_tanh(uint64_t out, uint64_t x, int64_t n, int act) { return launch_ew<Ew::Gelu>("vt_gelu_tanh", out, x, 0, 1, n, act); }

int vt_scale_softcap(uint64_t out, uint64_t x, int64_t n, float scale, float soft_cap, int act) {
  if (n <= 0) return 0;
  VT_READY();
  return dispatch_float(act, "vt_scale_softcap", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const bool vec = n % 8 == 0 && aligned_to(out, 8 * sizeof(T)) && aligned_to(x, 8 * sizeof(T));
    const int grid = blocks_for(vec ? n / 8 : n, 256, (int64_t)g.sm_count * 16);
    const float cap = soft_cap > 0.f ? soft_cap : 0.f;
    if (vec) scale_softcap_kernel<T, 8><<<grid, 256, 0, g.stream>>>((T*)out, (const T*)x, n, scale, cap);
    else scale_softcap_kernel<T, 1><<<grid, 256, 0, g.stream>>>((T*)out, (const T*)x, n, scale, cap);
    return check_launch("vt_scale_softcap");
  });
}

int vt_rope(uint64_t q, uint64_t k, uint64_t positions, uint64_t cos_sin_cache, int64_t num_tokens, int64_t num_heads,
            int64_t num_kv_heads, int64_t head_dim, int64_t rotary_dim, int64_t q_stride, int64_t k_stride, int is_neox, int act) {
  if (num_tokens <= 0) return 0;
  if (rotary_dim <= 0 || rotary_dim > head_dim || rotary_dim % 2 != 0)
    return set_error("vt_rope: rotary_dim %lld must be even and in (0, head_dim = %lld]", (long long)rotary_dim, (long long)head_dim);
  if (num_tokens > 2147483647LL) return set_error("vt_rope: too many tokens (%lld)", (long long)num_tokens);
  VT_READY();
  return dispatch_float(act, "vt_rope", [&](auto a) {
    using T = typename decltype(a)::type;
    int64_t work = (num_heads + num_kv_heads) * rotary_dim / 2;
    int threads = work >= 256 ? 256 : (int)((work + 31) / 32 * 32);
    rope_kernel<T, false><<<(unsigned)num_tokens, threads, 0, g.stream>>>((T*)q, (T*)k, (const int*)positions, (const float*)cos_sin_cache,
                                                                           (int)num_heads, (int)num_kv_heads, (int)head_dim, (int)rotary_dim,
                                                                           q_stride, k_stride, is_neox != 0, nullptr, nullptr, nullptr,
                                                                           nullptr, 0, false);
    return check_launch("vt_rope");
  });
}

int vt_rope_and_cache(uint64_t q, uint64_t k, uint64_t v, uint64_t positions, uint64_t cos_sin_cache, uint64_t k_cache, uint64_t v_cache,
                      uint64_t slot_mapping, int64_t num_tokens, int64_t num_heads, int64_t num_kv_heads, int64_t head_dim,
                      int64_t rotary_dim, int64_t q_stride, int64_t k_stride, int64_t v_stride, int is_neox, int act) {
  if (num_tokens <= 0) return 0;
  if (num_heads <= 0 || num_kv_heads <= 0 || head_dim <= 0)
    return set_error("vt_rope_and_cache: bad shape num_heads=%lld num_kv_heads=%lld head_dim=%lld", (long long)num_heads,
                     (long long)num_kv_heads, (long long)head_dim);
  if (rotary_dim <= 0 || rotary_dim > head_dim || rotary_dim % 2 != 0)
    return set_error("vt_rope_and_cache: rotary_dim %lld must be even and in (0, head_dim = %lld]", (long long)rotary_dim,
                     (long long)head_dim);
  if (q_stride < num_heads * head_dim || k_stride < num_kv_heads * head_dim || v_stride < num_kv_heads * head_dim)
    return set_error("vt_rope_and_cache: row strides (q %lld, k %lld, v %lld) are shorter than a row of heads", (long long)q_stride,
                     (long long)k_stride, (long long)v_stride);
  if (num_tokens > 2147483647LL) return set_error("vt_rope_and_cache: too many tokens (%lld)", (long long)num_tokens);
  VT_READY();
  return dispatch_float(act, "vt_rope_and_cache", [&](auto a) {
    using T = typename decltype(a)::type;
    // The launch vt_rope makes (same threads), plus the cache stores.
    int64_t work = (num_heads + num_kv_heads) * rotary_dim / 2;
    int threads = work >= 256 ? 256 : (int)((work + 31) / 32 * 32);
    const int64_t V = 16 / (int64_t)sizeof(T);
    const bool vec = (num_kv_heads * head_dim) % V == 0 && v_stride % V == 0 && aligned_to(v, 16) && aligned_to(v_cache, 16);
    rope_kernel<T, true><<<(unsigned)num_tokens, threads, 0, g.stream>>>((T*)q, (T*)k, (const int*)positions, (const float*)cos_sin_cache,
                                                                          (int)num_heads, (int)num_kv_heads, (int)head_dim, (int)rotary_dim,
                                                                          q_stride, k_stride, is_neox != 0, (const T*)v, (T*)k_cache,
                                                                          (T*)v_cache, (const int*)slot_mapping, v_stride, vec);
    return check_launch("vt_rope_and_cache");
  });
}

int vt_reshape_and_cache(uint64_t key, uint64_t value, uint64_t k_cache, uint64_t v_cache, uint64_t slot_mapping, int64_t num_tokens,
                         int64_t num_kv_heads, int64_t head_dim, int64_t key_stride, int64_t value_stride, int act) {
  if (num_tokens <= 0) return 0;
  VT_READY();
  return dispatch_float(act, "vt_reshape_and_cache", [&](auto a) {
    using T = typename decltype(a)::type;
    int64_t width = num_kv_heads * head_dim;
    int V = sizeof(T) == 2 ? 8 : 4;  // 16 bytes
    uint64_t al = 16;
    bool vec = width % V == 0 && key_stride % V == 0 && value_stride % V == 0 && aligned_to(key, al) && aligned_to(value, al) &&
               aligned_to(k_cache, al) && aligned_to(v_cache, al);
    int64_t units = num_tokens * (vec ? width / V : width);
    int grid = blocks_for(units, 256, (int64_t)g.sm_count * 16);
    if (vec && sizeof(T) == 2)
      cache_kernel<T, 8><<<grid, 256, 0, g.stream>>>((const T*)key, (const T*)value, (T*)k_cache, (T*)v_cache, (const int*)slot_mapping,
                                                      num_tokens, width, key_stride, value_stride);
    else if (vec)
      cache_kernel<float, 4><<<grid, 256, 0, g.stream>>>((const float*)key, (const float*)value, (float*)k_cache, (float*)v_cache,
                                                          (const int*)slot_mapping, num_tokens, width, key_stride, value_stride);
    else
      cache_kernel<T, 1><<<grid, 256, 0, g.stream>>>((const T*)key, (const T*)value, (T*)k_cache, (T*)v_cache, (const int*)slot_mapping,
                                                      num_tokens, width, key_stride, value_stride);
    return check_launch("vt_reshape_and_cache");
  });
}

}  // extern "C"
