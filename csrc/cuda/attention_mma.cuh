// Tensor-core building blocks of the attention kernels (sm_80+): cp.async copies
// into shared memory, ldmatrix loads and the m16n8k16 mma with f32 accumulators.
// NOTE: fragment layouts of mma.m16n8k16 (g = lane / 4, t = lane % 4):
//   A 16x16 (row-major): a0 (row g, cols 2t..2t+1), a1 (row g+8, same cols),
//                        a2 (row g, cols 2t+8..+9), a3 (row g+8, cols 2t+8..+9)
//   B 16x8 (k x n):      b0 (k 2t..2t+1, col g), b1 (k 2t+8..+9, col g)
//   C 16x8 (f32):        c0,c1 (row g, cols 2t..2t+1), c2,c3 (row g+8, same cols)
// ldmatrix.x4 hands lane l row l/4, elements 2(l%4)..+1 of each of the four 8x8
// matrices whose row addresses come from lanes 0-7, 8-15, 16-23, 24-31 (.trans:
// the transposed matrices). The *_row / *_col helpers below give the shared-memory
// row and column that lane l must point at for each operand; they are plain
// functions so that a host program can check them against a reference product.
#pragma once
#include "attention.cuh"
#include "cp_async.cuh"

namespace vt {
namespace mma {

// A operand (Q, 16 rows x 16 dims at k-step kk): row and column of lane l.
__host__ __device__ constexpr int a_row(int l) { return l % 16; }
__host__ __device__ constexpr int a_col(int l) { return (l / 16) * 8; }
// B operand from a row-major [key][dim] tile, S = Q K^T (ldmatrix, no .trans):
// x4 covers keys 0-15 x dims 0-15 and yields {b0, b1} of keys 0-7, then of keys 8-15.
__host__ __device__ constexpr int k_row(int l) { return (l % 8) + (l / 16) * 8; }
__host__ __device__ constexpr int k_col(int l) { return ((l / 8) % 2) * 8; }
// B operand from a row-major [key][dim] tile, O = P V (ldmatrix.trans): x4 covers
// keys 0-15 x dims 0-15 and yields {b0, b1} of dims 0-7, then of dims 8-15.
__host__ __device__ constexpr int v_row(int l) { return (l % 8) + ((l / 8) % 2) * 8; }
__host__ __device__ constexpr int v_col(int l) { return (l / 16) * 8; }

#ifdef __CUDACC__
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// d += a * b (16x8x16, f32 accumulators), T = __nv_bfloat16 or __half.
template <typename T>
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same<T, __nv_bfloat16>::value) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// Two floats -> one register of two 16-bit values (lo in the low half).
template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  if constexpr (std::is_same<T, __nv_bfloat16>::value) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  } else {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
}

// 2^x with one MUFU instruction (ex2.approx.ftz: 2^-inf = 0, ~2 ulp).
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Sum over the 4 lanes of a quad (the lanes that share an mma row).
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}
__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}

// One online-softmax step over a tile of scores in mma C layout, s [NNB n-blocks][4]
// (scaled, log2 units, masked keys -inf), for the lane's rows a (lane/4: s[.][0..1])
// and b (a + 8: s[.][2..3]): raises the running maxima m_*, turns s into
// 2^(s - m) in place, adds this lane's share of the sums to l_* (the quad is summed
// at the end, quad_sum) and returns in corr_* the factor the outputs must be scaled by.
template <int NNB>
__device__ __forceinline__ void online_softmax_tile(float (&s)[NNB][4], float& m_a, float& m_b, float& l_a, float& l_b, float& corr_a,
                                                    float& corr_b) {
  float mx_a = -INFINITY, mx_b = -INFINITY;
#pragma unroll
  for (int nb = 0; nb < NNB; nb++) {
    mx_a = fmaxf(mx_a, fmaxf(s[nb][0], s[nb][1]));
    mx_b = fmaxf(mx_b, fmaxf(s[nb][2], s[nb][3]));
  }
  mx_a = quad_max(mx_a);
  mx_b = quad_max(mx_b);
  const float mn_a = fmaxf(m_a, mx_a), mn_b = fmaxf(m_b, mx_b);
  // A row that has seen only masked keys keeps max -inf: exponentiate against 0 (gives 0).
  const float ref_a = mn_a == -INFINITY ? 0.f : mn_a, ref_b = mn_b == -INFINITY ? 0.f : mn_b;
  corr_a = fast_exp2(m_a - ref_a);
  corr_b = fast_exp2(m_b - ref_b);
  m_a = mn_a;
  m_b = mn_b;
  float sum_a = 0.f, sum_b = 0.f;
#pragma unroll
  for (int nb = 0; nb < NNB; nb++) {
    s[nb][0] = fast_exp2(s[nb][0] - ref_a);
    s[nb][1] = fast_exp2(s[nb][1] - ref_a);
    s[nb][2] = fast_exp2(s[nb][2] - ref_b);
    s[nb][3] = fast_exp2(s[nb][3] - ref_b);
    sum_a += s[nb][0] + s[nb][1];
    sum_b += s[nb][2] + s[nb][3];
  }
  l_a = l_a * corr_a + sum_a;
  l_b = l_b * corr_b + sum_b;
}

// Physical slot of key position t of a sequence (block table row bt).
__device__ __forceinline__ int64_t kv_slot(const int* bt, int t, int block_size, int block_shift) {
  const int b = block_shift >= 0 ? t >> block_shift : t / block_size;
  const int off = t - b * block_size;
  return (int64_t)bt[b] * block_size + off;
}
#endif

}  // namespace mma
}  // namespace vt
