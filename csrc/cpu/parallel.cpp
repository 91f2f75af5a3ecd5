// Tensor-parallel ops of the CPU library: the vocabulary-parallel embedding and the
// strided copy that lays an all-gather's rank-major output out row by row. The
// collectives themselves are not here: CPU ranks are threads of one process and
// use the in-process communicator (src/distributed/in_process.ts), so the NCCL
// entry points answer with an error naming it.
#include "common.h"

namespace vt {
namespace {

// out[t, :] = ids[t] in [start, end) ? weight[ids[t] - start, :] * scale : 0
template <class W>
void vocab_rows(float* out, const W* weight, const int32_t* ids, int64_t num_tokens, int64_t hidden, float scale, int64_t start,
                int64_t end) {
  parallel_for(num_tokens, double(hidden), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; t++) {
      float* o = out + t * hidden;
      int64_t id = ids[t];
      if (id < start || id >= end) {
        memset(o, 0, size_t(hidden) * sizeof(float));
        continue;
      }
      const W* w = weight + (id - start) * hidden;
      for (int64_t k = 0; k < hidden; k++) o[k] = to_f32(w[k]) * scale;
    }
  });
}

int no_nccl(const char* op) {
  return set_error("%s: the CPU library has no NCCL; CPU ranks use the in-process communicator (src/distributed/in_process.ts)", op);
}

}  // namespace
}  // namespace vt

using namespace vt;

extern "C" {

int vt_vocab_embedding(uint64_t out, uint64_t weight, uint64_t ids, int64_t num_tokens, int64_t hidden, float scale,
                       int64_t vocab_start, int64_t vocab_end, int wdt, int act) {
  VT_CAPTURE(vt_vocab_embedding(out, weight, ids, num_tokens, hidden, scale, vocab_start, vocab_end, wdt, act));
  if (check_act("vt_vocab_embedding", act) || check_wdt("vt_vocab_embedding", wdt)) return 1;
  if (num_tokens < 0 || hidden <= 0 || vocab_start < 0 || vocab_end < vocab_start)
    return set_error("vt_vocab_embedding: bad shape num_tokens=%lld hidden=%lld range [%lld, %lld)", (long long)num_tokens,
                     (long long)hidden, (long long)vocab_start, (long long)vocab_end);
  if (num_tokens == 0) return 0;
  if (!out || !weight || !ids) return set_error("vt_vocab_embedding: a required tensor address is null");
  const int32_t* id = ptr<const int32_t>(ids);
  float* o = ptr<float>(out);
  if (wdt == VT_F32) vocab_rows(o, ptr<const float>(weight), id, num_tokens, hidden, scale, vocab_start, vocab_end);
  else if (wdt == VT_BF16) vocab_rows(o, ptr<const bf16>(weight), id, num_tokens, hidden, scale, vocab_start, vocab_end);
  else vocab_rows(o, ptr<const f16>(weight), id, num_tokens, hidden, scale, vocab_start, vocab_end);
  return 0;
}

int vt_copy_2d(uint64_t dst, int64_t dst_pitch, uint64_t src, int64_t src_pitch, int64_t width, int64_t height) {
  VT_CAPTURE(vt_copy_2d(dst, dst_pitch, src, src_pitch, width, height));
  if (width < 0 || height < 0 || dst_pitch < width || src_pitch < width)
    return set_error("vt_copy_2d: bad shape width=%lld height=%lld pitches %lld / %lld", (long long)width, (long long)height,
                     (long long)dst_pitch, (long long)src_pitch);
  if (width == 0 || height == 0) return 0;
  if (!dst || !src) return set_error("vt_copy_2d: null pointer");
  for (int64_t r = 0; r < height; r++) memmove(ptr<char>(dst) + r * dst_pitch, ptr<const char>(src) + r * src_pitch, size_t(width));
  return 0;
}

int vt_nccl_load(const char*) { return no_nccl("vt_nccl_load"); }
int vt_nccl_version(void) { return 0; }
int vt_nccl_unique_id(uint8_t*) { return no_nccl("vt_nccl_unique_id"); }
int vt_nccl_init(int, int, const uint8_t*) { return no_nccl("vt_nccl_init"); }
int vt_all_reduce(uint64_t, int64_t, int) { return no_nccl("vt_all_reduce"); }
int vt_all_gather(uint64_t, uint64_t, int64_t, int) { return no_nccl("vt_all_gather"); }
int vt_nccl_destroy(void) { return 0; }

}  // extern "C"
