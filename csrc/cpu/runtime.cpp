// Runtime entry points of the CPU library: errors, device description, memory info,
// and the scalar f16 conversions.
#include <stdarg.h>
#include <stdio.h>

#include <string>

#include "simd.h"

namespace vt {
namespace {
thread_local std::string last_error;
}

int set_error(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  last_error = buf;
  return 1;
}

const char* dtype_name(int dtype) {
  switch (dtype) {
    case VT_F32: return "f32";
    case VT_F16: return "f16";
    case VT_BF16: return "bf16";
    case VT_I32: return "i32";
    case VT_I64: return "i64";
    case VT_U8: return "u8";
    default: return "unknown";
  }
}

int check_act(const char* op, int act) {
  if (act == VT_F32) return 0;
  return set_error("%s: activation dtype %s (%d) is not supported by the CPU library, which computes in f32: pass VT_F32 activations", op,
              dtype_name(act), act);
}

int check_wdt(const char* op, int wdt) {
  if (wdt == VT_F32 || wdt == VT_F16 || wdt == VT_BF16) return 0;
  return set_error("%s: weight dtype %s (%d) is not supported: weights must be f32, f16 or bf16", op, dtype_name(wdt), wdt);
}

float f16_bits_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0) {
    float f = float(mant) * (1.0f / 16777216.0f);  // subnormal: mant * 2^-24
    return sign ? -f : f;
  }
  if (exp == 31) bits = sign | 0x7f800000u | (mant << 13);
  else bits = sign | ((exp + 112) << 23) | (mant << 13);
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_f16_bits(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000, exp = (x >> 23) & 0xff, mant = x & 0x7fffff;
  if (exp == 0xff) return uint16_t(sign | 0x7c00 | (mant ? 0x200 : 0));
  int e = int(exp) - 127 + 15;
  if (e >= 31) return uint16_t(sign | 0x7c00);
  if (e <= 0) {
    if (e < -10) return uint16_t(sign);
    mant |= 0x800000;
    int shift = 14 - e;
    uint32_t hm = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (hm & 1))) hm++;
    return uint16_t(sign | hm);
  }
  uint32_t hm = mant >> 13, rem = mant & 0x1fff;
  uint32_t out = sign | (uint32_t(e) << 10) | hm;
  if (rem > 0x1000 || (rem == 0x1000 && (hm & 1))) out++;  // a carry into the exponent is right
  return uint16_t(out);
}

}  // namespace vt

using namespace vt;

extern "C" {

const char* vt_last_error(void) { return last_error.c_str(); }
const char* vt_backend_name(void) { return "cpu"; }
int vt_device_count(void) { return 1; }
int vt_synchronize(void) { return 0; }

const char* vt_device_name(void) {
  static thread_local char buf[128];
  int n = vt_num_threads();
  snprintf(buf, sizeof buf, "CPU (%s, %d thread%s)", VT_SIMD_NAME, n, n == 1 ? "" : "s");
  return buf;
}

int vt_mem_info(uint64_t* free_bytes, uint64_t* total_bytes) {
  FILE* f = fopen("/proc/meminfo", "r");
  if (!f) return set_error("vt_mem_info: cannot read /proc/meminfo");
  uint64_t avail = 0, total = 0;
  char line[256];
  while (fgets(line, sizeof line, f)) {
    unsigned long long kb;
    if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) avail = kb * 1024;
    else if (sscanf(line, "MemTotal: %llu kB", &kb) == 1) total = kb * 1024;
  }
  fclose(f);
  if (!total) return set_error("vt_mem_info: MemTotal missing from /proc/meminfo");
  if (free_bytes) *free_bytes = avail;
  if (total_bytes) *total_bytes = total;
  return 0;
}

}  // extern "C"
