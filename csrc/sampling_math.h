// Scalar math of vt_sample / vt_logprobs, compiled into both libraries (g++ and
// nvcc) so that the CPU and CUDA ops pick the same token for the same logits.
//
// NOTE: bit-identical sampling on two devices. Everything that decides a token is
// either an exact IEEE operation written out explicitly (a subtract, a multiply,
// fmaf, rintf: no a*b+c left for a compiler to contract into an fma), or integer
// arithmetic: each kept token's probability mass is the fixed-point integer
// floor(w * 2^44) of its weight w = exp((logit - max) / T) in [0, 1], so sums of
// masses are exact in any order (a u64 holds 2^19 tokens of weight 1), and the
// top-p target and the draw u * total are computed exactly in 128 bits. Weights
// below 2^-44 (more than ~30.5 nats under the max) have no mass and are never drawn.
#pragma once
#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define VT_HD __host__ __device__ __forceinline__
#else
#include <math.h>
#define VT_HD inline
#endif

namespace vt {
namespace smp {

constexpr int kMassBits = 44;
constexpr int64_t kMaxVocab = int64_t(1) << 19;
// temperature below this: greedy (vLLM's _SAMPLING_EPS)
constexpr float kGreedyTemperature = 1e-5f;
// Top-p's first histogram: 64 bins per nat of |x| = (max - logit) / T, over [0, 32).
constexpr int kBins = 2048;
constexpr float kBinsPerNat = 64.0f;

VT_HD uint32_t f2u(float f) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(f);
#else
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
#endif
}

VT_HD float u2f(uint32_t u) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(u);
#else
  float f;
  memcpy(&f, &u, 4);
  return f;
#endif
}

// Order-preserving key of a logit: a > b as floats <=> key(a) > key(b). NaN ranks
// as -inf and -0 as +0, so that equal values share one key.
VT_HD uint32_t logit_key(float v) {
  if (v != v) return 0x007fffffu;
  if (v == 0.0f) return 0x80000000u;
  uint32_t u = f2u(v);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

VT_HD float key_value(uint32_t k) { return u2f((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k); }

// e^x for x <= 0 (0 below -87 and for NaN): Cody-Waite reduction to
// r in [-ln2/2, ln2/2], a degree-7 Taylor polynomial, scaling by 2^n.
VT_HD float exp_nonpos(float x) {
  if (!(x > -87.0f)) return 0.0f;
  float n = rintf(x * 1.44269504088896341f);
  float r = fmaf(n, -0.693145751953125f, x);
  r = fmaf(n, -1.428606765330187e-06f, r);
  float p = 1.0f / 5040.0f;
  p = fmaf(p, r, 1.0f / 720.0f);
  p = fmaf(p, r, 1.0f / 120.0f);
  p = fmaf(p, r, 1.0f / 24.0f);
  p = fmaf(p, r, 1.0f / 6.0f);
  p = fmaf(p, r, 0.5f);
  p = fmaf(p, r, 1.0f);
  p = fmaf(p, r, 1.0f);
  return p * u2f(uint32_t(int(n) + 127) << 23);
}

VT_HD uint64_t mass_of(float w) { return (uint64_t)(w * 17592186044416.0f); }  // w * 2^44, truncated

// |x| as an ascending key (x = (logit - max) / T <= 0): more probable first.
VT_HD uint32_t abs_key(float x) { return f2u(x) & 0x7fffffffu; }

VT_HD void mul_wide(uint64_t a, uint64_t b, uint64_t* hi, uint64_t* lo) {
#ifdef __CUDA_ARCH__
  *lo = a * b;
  *hi = __umul64hi(a, b);
#else
  unsigned __int128 p = (unsigned __int128)a * b;
  *lo = (uint64_t)p;
  *hi = (uint64_t)(p >> 64);
#endif
}

// floor(a * f) (or its ceiling) exactly, for f in [0, 1); f <= 0 or NaN gives 0.
VT_HD uint64_t mul_frac(uint64_t a, float f, bool round_up) {
  if (!(f > 0.0f)) return 0;
  uint32_t b = f2u(f), e = b >> 23;
  uint64_t m = b & 0x7fffffu;
  int shift = 149;  // f = m * 2^-shift
  if (e != 0) {
    m |= 0x800000u;
    shift = 150 - int(e);
  }
  uint64_t hi, lo;
  mul_wide(a, m, &hi, &lo);
  uint64_t q;
  bool rem;
  if (shift >= 128) {
    q = 0;
    rem = (hi | lo) != 0;
  } else if (shift >= 64) {
    int s = shift - 64;
    q = s == 0 ? hi : hi >> s;
    rem = lo != 0 || (s != 0 && (hi & ((uint64_t(1) << s) - 1)) != 0);
  } else {  // shift >= 24 since f < 1, so the quotient fits in 64 bits
    q = (lo >> shift) | (hi << (64 - shift));
    rem = (lo & ((uint64_t(1) << shift) - 1)) != 0;
  }
  return q + (round_up && rem ? 1 : 0);
}

// The draw: the kept mass below which the first token exceeding it is chosen.
VT_HD uint64_t draw_target(uint64_t total, float u) { return u >= 1.0f ? total - 1 : mul_frac(total, u, false); }

// Top-p's target mass: ceil(top_p * total), at least 1.
VT_HD uint64_t top_p_target(uint64_t total, float top_p) {
  uint64_t t = mul_frac(total, top_p, true);
  return t < 1 ? 1 : t;
}

}  // namespace smp
}  // namespace vt
