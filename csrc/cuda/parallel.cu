// Tensor-parallel ops of the CUDA library: the vocabulary-parallel embedding (rows
// of other ranks' ids are zeros, summed away by the all-reduce) and the strided
// copy that lays an all-gather's rank-major output out row by row. Both run on the
// library's stream and are capturable in CUDA graphs. NCCL is in nccl.cu.
#include "common.cuh"

using namespace vt;

namespace {

// out[t, :] = ids[t] in [start, end) ? weight[ids[t] - start, :] * scale : 0
//   grid: one block per token
template <typename S, typename D>
__global__ void vocab_embedding_kernel(D* out, const S* weight, const int* ids, int64_t hidden, float scale, int64_t start,
                                       int64_t end) {
  int64_t t = blockIdx.x;
  int64_t id = ids[t];
  bool mine = id >= start && id < end;
  const S* w = weight + (mine ? id - start : 0) * hidden;
  for (int64_t c = threadIdx.x; c < hidden; c += blockDim.x) out[t * hidden + c] = from_f32<D>(mine ? to_f32(w[c]) * scale : 0.f);
}

}  // namespace

extern "C" {

int vt_vocab_embedding(uint64_t out, uint64_t weight, uint64_t ids, int64_t num_tokens, int64_t hidden, float scale,
                       int64_t vocab_start, int64_t vocab_end, int wdt, int act) {
  if (num_tokens < 0 || hidden <= 0 || vocab_start < 0 || vocab_end < vocab_start)
    return set_error("vt_vocab_embedding: bad shape num_tokens=%lld hidden=%lld range [%lld, %lld)", (long long)num_tokens,
                     (long long)hidden, (long long)vocab_start, (long long)vocab_end);
  if (num_tokens == 0) return 0;
  if (num_tokens > 2147483647LL) return set_error("vt_vocab_embedding: %lld tokens is more than one launch handles", (long long)num_tokens);
  VT_READY();
  return dispatch_float(wdt, "vt_vocab_embedding", [&](auto w) {
    using S = typename decltype(w)::type;
    return dispatch_float(act, "vt_vocab_embedding", [&](auto a) {
      using D = typename decltype(a)::type;
      int threads = hidden >= 256 ? 256 : (int)((hidden + 31) / 32 * 32);
      vocab_embedding_kernel<S, D><<<(unsigned)num_tokens, threads, 0, g.stream>>>((D*)out, (const S*)weight, (const int*)ids, hidden,
                                                                                 scale, vocab_start, vocab_end);
      return check_launch("vt_vocab_embedding");
    });
  });
}

int vt_copy_2d(uint64_t dst, int64_t dst_pitch, uint64_t src, int64_t src_pitch, int64_t width, int64_t height) {
  if (width < 0 || height < 0 || dst_pitch < width || src_pitch < width)
    return set_error("vt_copy_2d: bad shape width=%lld height=%lld pitches %lld / %lld", (long long)width, (long long)height,
                     (long long)dst_pitch, (long long)src_pitch);
  if (width == 0 || height == 0) return 0;
  VT_READY();
  VT_CUDA(cudaMemcpy2DAsync((void*)(uintptr_t)dst, (size_t)dst_pitch, (const void*)(uintptr_t)src, (size_t)src_pitch, (size_t)width,
                            (size_t)height, cudaMemcpyDeviceToDevice, g.stream));
  return 0;
}

}  // extern "C"
