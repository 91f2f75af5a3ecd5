// 16-byte cp.async copies from global into shared memory (sm_80+), shared by the
// attention kernels (attention_mma.cuh) and the tiled MoE GEMM (moe_gemm_tiled.cuh).
#pragma once
#include <stdint.h>

namespace vt {
namespace mma {

#ifdef __CUDACC__
__device__ __forceinline__ uint32_t smem_u32(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }

// 16 bytes global -> shared; zero-fills the destination when !pred (src is not read).
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool pred) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(pred ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

#endif

}  // namespace mma
}  // namespace vt
