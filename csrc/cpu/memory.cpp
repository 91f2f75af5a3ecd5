// Memory entry points: allocation, copies, dtype conversion and the dummy-weight
// random fill.
#include <stdlib.h>
#include <sys/mman.h>

#include "common.h"

namespace vt {
namespace {

// Writes f32 values into storage of a float dtype.
inline void store_as(void* dst, int dtype, int64_t i, float v) {
  if (dtype == VT_F32) static_cast<float*>(dst)[i] = v;
  else if (dtype == VT_BF16) static_cast<uint16_t*>(dst)[i] = f32_to_bf16_bits(v);
  else static_cast<uint16_t*>(dst)[i] = f32_to_f16_bits(v);
}

inline float load_as(const void* src, int dtype, int64_t i) {
  if (dtype == VT_F32) return static_cast<const float*>(src)[i];
  bf16 b{static_cast<const uint16_t*>(src)[i]};
  return dtype == VT_BF16 ? to_f32(b) : f16_bits_to_f32(b.bits);
}

int check_float(const char* op, const char* what, int dtype) {
  if (dtype == VT_F32 || dtype == VT_F16 || dtype == VT_BF16) return 0;
  return set_error("%s: %s dtype %s (%d) is not a float dtype (f32, f16, bf16)", op, what, dtype_name(dtype), dtype);
}

inline uint64_t splitmix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace
}  // namespace vt

using namespace vt;

extern "C" {

uint64_t vt_malloc(uint64_t bytes) {
  // Buffers from 1 MiB (weights, KV cache) are 2 MiB aligned, rounded up to whole
  // 2 MiB pages and asked for huge pages: a decode step streams every weight once,
  // and on 4 KiB pages a 1-3 MiB weight matrix streams ~30% slower (page walks,
  // prefetchers stopping at every page). The rounding costs under 2 MiB a buffer.
  const uint64_t huge = 2ull << 20;
  uint64_t align = bytes >= huge / 2 ? huge : 64;
  uint64_t size = (bytes + align - 1) / align * align;
  void* p = nullptr;
  if (size == 0) size = 64;
  if (posix_memalign(&p, align, size) != 0) {
    set_error("vt_malloc: out of host memory allocating %llu bytes", (unsigned long long)bytes);
    return 0;
  }
  if (align == huge) madvise(p, size, MADV_HUGEPAGE);
  return uint64_t(uintptr_t(p));
}

int vt_free(uint64_t addr) {
  free(ptr<void>(addr));
  return 0;
}

void* vt_host_ptr(uint64_t addr) { return ptr<void>(addr); }

int vt_copy_h2d(uint64_t dst, const void* src, uint64_t bytes) {
  if (graph_fail_host_copy("vt_copy_h2d")) return 1;
  if (bytes && (!dst || !src)) return set_error("vt_copy_h2d: null pointer for a %llu-byte copy", (unsigned long long)bytes);
  if (bytes) memcpy(ptr<void>(dst), src, bytes);
  return 0;
}

int vt_copy_d2h(void* dst, uint64_t src, uint64_t bytes) {
  if (graph_fail_host_copy("vt_copy_d2h")) return 1;
  if (bytes && (!dst || !src)) return set_error("vt_copy_d2h: null pointer for a %llu-byte copy", (unsigned long long)bytes);
  if (bytes) memcpy(dst, ptr<void>(src), bytes);
  return 0;
}

int vt_copy_d2d(uint64_t dst, uint64_t src, uint64_t bytes) {
  VT_CAPTURE(vt_copy_d2d(dst, src, bytes));
  if (bytes && (!dst || !src)) return set_error("vt_copy_d2d: null pointer for a %llu-byte copy", (unsigned long long)bytes);
  if (bytes) memmove(ptr<void>(dst), ptr<void>(src), bytes);
  return 0;
}

int vt_memset(uint64_t dst, int value, uint64_t bytes) {
  VT_CAPTURE(vt_memset(dst, value, bytes));
  if (bytes && !dst) return set_error("vt_memset: null pointer for %llu bytes", (unsigned long long)bytes);
  if (bytes) memset(ptr<void>(dst), value, bytes);
  return 0;
}

int vt_convert(uint64_t dst, int dst_dtype, uint64_t src, int src_dtype, uint64_t n) {
  VT_CAPTURE(vt_convert(dst, dst_dtype, src, src_dtype, n));
  if (check_float("vt_convert", "destination", dst_dtype) || check_float("vt_convert", "source", src_dtype)) return 1;
  if (n && (!dst || !src)) return set_error("vt_convert: null pointer");
  void* d = ptr<void>(dst);
  const void* s = ptr<const void>(src);
  parallel_for(int64_t(n), 2, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) store_as(d, dst_dtype, i, load_as(s, src_dtype, i));
  });
  return 0;
}

// NOTE: counter-based, so that the CUDA twin produces the same values. Element i:
//   x = splitmix64(seed + i * 0x9E3779B97F4A7C15)   (splitmix64: add the golden
//       gamma 0x9E3779B97F4A7C15, then the standard xor-shift-multiply finalizer)
//   u = (x >> 40) * 2^-24                           (24 bits, exactly in [0, 1))
//   value = (2u - 1) * scale                        (f32: 2u - 1 is exact, one
//       rounding for * scale), then rounded to the dtype (nearest even).
int vt_fill_random(uint64_t dst, int dtype, uint64_t n, uint64_t seed, float scale) {
  VT_CAPTURE(vt_fill_random(dst, dtype, n, seed, scale));
  if (check_float("vt_fill_random", "destination", dtype)) return 1;
  if (n && !dst) return set_error("vt_fill_random: null pointer");
  void* d = ptr<void>(dst);
  parallel_for(int64_t(n), 8, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) {
      uint64_t x = splitmix64(seed + uint64_t(i) * 0x9E3779B97F4A7C15ULL);
      float u = float(x >> 40) * (1.0f / 16777216.0f);
      store_as(d, dtype, i, (2.0f * u - 1.0f) * scale);
    }
  });
  return 0;
}

}  // extern "C"
