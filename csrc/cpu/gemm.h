// Private to linear.cpp / gemm.cpp: the prefill GEMM on one panel of weight rows.
#pragma once
#include "simd.h"

namespace vt {

// Outputs per panel (kGemmVecs vectors of VL outputs).
constexpr int kGemmVecs = 3;
constexpr int kGemmPanel = kGemmVecs * VL;

// Packs weight rows [0, nb) (nb <= kGemmPanel, rows K apart), widened to f32, into
// the calling thread's panel buffer, and returns it.
template <class W>
const float* gemm_pack(const W* w, int64_t nb, int64_t K);

// out[m, p] = x[m, :] . w[p, :] (+ bias[p]) for m < M, p < nb, from a packed panel;
// out rows ldo apart, x rows K apart.
void gemm_panel(float* out, int64_t ldo, const float* x, int64_t M, int64_t K, const float* pk, int64_t nb,
                const float* bias);

}  // namespace vt
