// vt_apply_token_bitmask on the device (structured outputs): the step's grammar
// bitmask is uploaded and applied to the logits in place, so that no logits row
// crosses to the host. Twin: csrc/cpu/token_bitmask.cpp.
#include <math.h>

#include "common.cuh"

using namespace vt;

namespace {

// logits[rows[i], t] = -inf where bit t of bitmask row i is clear.
//   grid: (ceil(width / blockDim.x), n); one thread per 32-token word
template <typename T>
__global__ void token_bitmask_kernel(T* logits, const uint32_t* bitmask, const int* rows, int64_t vocab, int64_t width) {
  int64_t i = blockIdx.y;
  int64_t w = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (w >= width || w * 32 >= vocab) return;
  uint32_t bits = bitmask[i * width + w];
  if (bits == 0xffffffffu) return;
  T* row = logits + (int64_t)rows[i] * vocab;
  int64_t end = w * 32 + 32 < vocab ? w * 32 + 32 : vocab;
  for (int64_t t = w * 32; t < end; t++)
    if (!((bits >> (t & 31)) & 1u)) row[t] = from_f32<T>(-INFINITY);
}

}  // namespace

extern "C" int vt_apply_token_bitmask(uint64_t logits, uint64_t bitmask, uint64_t rows, int64_t n, int64_t vocab,
                                      int64_t width, int act) {
  VT_READY();
  if (n < 0 || vocab < 0) return set_error("vt_apply_token_bitmask: bad shape n=%lld vocab=%lld", (long long)n, (long long)vocab);
  if (width * 32 < vocab) return set_error("vt_apply_token_bitmask: width %lld words cannot cover vocab %lld", (long long)width, (long long)vocab);
  if (n == 0 || vocab == 0) return 0;
  if (!logits || !bitmask || !rows) return set_error("vt_apply_token_bitmask: a required tensor address is null");
  if (n > 65535) return set_error("vt_apply_token_bitmask: %lld rows is more than one launch handles", (long long)n);
  return dispatch_float(act, "vt_apply_token_bitmask", [&](auto a) {
    using T = typename decltype(a)::type;
    const int threads = 256;
    dim3 grid((unsigned)((width + threads - 1) / threads), (unsigned)n);
    token_bitmask_kernel<T><<<grid, threads, 0, g.stream>>>((T*)logits, (const uint32_t*)bitmask, (const int*)rows, vocab, width);
    return check_launch("vt_apply_token_bitmask");
  });
}
