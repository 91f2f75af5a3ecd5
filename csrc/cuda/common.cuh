// Shared by every CUDA translation unit: the runtime state (device, stream,
// cuBLASLt), error reporting, dtype dispatch and 8-wide vector loads.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include <type_traits>

#include "../ops.h"
#include "cublaslt_api.h"

namespace vt {

struct Runtime {
  int device = -1;
  cudaStream_t stream = nullptr;
  int sm_count = 0;
  int smem_optin = 0;  // largest dynamic shared memory a block may opt into
  char name[640] = {0};
  LtApi lt;                         // cuBLASLt, loaded with dlopen (lt.ok == false: fallback GEMM)
  void* lt_workspace = nullptr;     // [lt_workspace_bytes]
  size_t lt_workspace_bytes = 0;
  float* attn_workspace = nullptr;  // split-K partials of the decode attention
  size_t attn_workspace_bytes = 0;
};
extern Runtime g;

// Records the message for vt_last_error() and returns 1.
int set_error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// Initializes device 0 when vt_init was never called, and makes the runtime's
// device current on the calling thread. 0 on success.
int ensure_ready();
// Checks the launch that just happened (cudaGetLastError). 0 on success.
int check_launch(const char* op);
// Releases per-weight conversion caches that point into [ptr, ptr + bytes).
void forget_converted(uint64_t ptr, uint64_t bytes);

inline int blocks_for(int64_t n, int threads, int64_t cap = 65535LL * 16) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  return (int)(b < cap ? b : cap);
}

// ---- element conversions ---------------------------------------------------
template <typename T> __device__ __forceinline__ float to_f32(T x);
template <> __device__ __forceinline__ float to_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ float to_f32<__half>(__half x) { return __half2float(x); }
template <> __device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T> __device__ __forceinline__ T from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_f32<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

// 8 consecutive elements <-> 8 floats. p must be aligned to 8 elements.
template <typename T>
__device__ __forceinline__ void load8(const T* p, float (&f)[8]) {
  if constexpr (sizeof(T) == 4) {
    float4 a = reinterpret_cast<const float4*>(p)[0];
    float4 b = reinterpret_cast<const float4*>(p)[1];
    f[0] = a.x; f[1] = a.y; f[2] = a.z; f[3] = a.w;
    f[4] = b.x; f[5] = b.y; f[6] = b.z; f[7] = b.w;
  } else {
    uint4 u = *reinterpret_cast<const uint4*>(p);
    const T* h = reinterpret_cast<const T*>(&u);
#pragma unroll
    for (int i = 0; i < 8; i++) f[i] = to_f32(h[i]);
  }
}

template <typename T>
__device__ __forceinline__ void store8(T* p, const float (&f)[8]) {
  if constexpr (sizeof(T) == 4) {
    reinterpret_cast<float4*>(p)[0] = make_float4(f[0], f[1], f[2], f[3]);
    reinterpret_cast<float4*>(p)[1] = make_float4(f[4], f[5], f[6], f[7]);
  } else {
    uint4 u;
    T* h = reinterpret_cast<T*>(&u);
#pragma unroll
    for (int i = 0; i < 8; i++) h[i] = from_f32<T>(f[i]);
    *reinterpret_cast<uint4*>(p) = u;
  }
}

// V = 8: a 16-byte vector access; V = 1: one element (unaligned or odd widths).
template <typename T, int V>
__device__ __forceinline__ void load_v(const T* p, float (&f)[V]) {
  if constexpr (V == 8) load8(p, f);
  else f[0] = to_f32(p[0]);
}

template <typename T, int V>
__device__ __forceinline__ void store_v(T* p, const float (&f)[V]) {
  if constexpr (V == 8) store8(p, f);
  else p[0] = from_f32<T>(f[0]);
}

inline bool aligned_to(uint64_t addr, uint64_t bytes) { return addr % bytes == 0; }

template <typename T> struct Tag { using type = T; };

// Calls fn(Tag<T>{}) with T the C++ type of a float dtype (f32, f16, bf16).
template <typename Fn>
int dispatch_float(int dtype, const char* op, Fn&& fn) {
  switch (dtype) {
    case VT_F32: return fn(Tag<float>{});
    case VT_F16: return fn(Tag<__half>{});
    case VT_BF16: return fn(Tag<__nv_bfloat16>{});
    default: return set_error("%s: unsupported dtype %d (expected VT_F32, VT_F16 or VT_BF16)", op, dtype);
  }
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over the whole block (blockDim.x a multiple of 32, at most 1024). Every thread gets it.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float partial[32];
  __shared__ float total;
  v = warp_sum(v);
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (warp == 0) {
    int nw = blockDim.x >> 5;
    float s = lane < nw ? partial[lane] : 0.f;
    s = warp_sum(s);
    if (lane == 0) total = s;
  }
  __syncthreads();
  float r = total;
  __syncthreads();
  return r;
}

}  // namespace vt

#define VT_CUDA(call)                                                                         \
  do {                                                                                        \
    cudaError_t vt_e_ = (call);                                                               \
    if (vt_e_ != cudaSuccess)                                                                 \
      return vt::set_error("%s failed: %s (%s)", #call, cudaGetErrorString(vt_e_), cudaGetErrorName(vt_e_)); \
  } while (0)

#define VT_READY()                       \
  do {                                   \
    if (vt::ensure_ready() != 0) return 1; \
  } while (0)
