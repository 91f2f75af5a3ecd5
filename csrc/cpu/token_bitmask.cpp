// vt_apply_token_bitmask on the CPU: the twin of csrc/cuda/token_bitmask.cu.
#include <math.h>

#include "common.h"

using namespace vt;

static int check_args(uint64_t logits, uint64_t bitmask, uint64_t rows, int64_t n, int64_t vocab, int64_t width) {
  if (n < 0 || vocab < 0) return set_error("vt_apply_token_bitmask: bad shape n=%lld vocab=%lld", (long long)n, (long long)vocab);
  if (width * 32 < vocab) return set_error("vt_apply_token_bitmask: width %lld words cannot cover vocab %lld", (long long)width, (long long)vocab);
  if (n == 0 || vocab == 0) return 0;
  if (!logits || !bitmask || !rows) return set_error("vt_apply_token_bitmask: a required tensor address is null");
  return 0;
}

extern "C" int vt_apply_token_bitmask(uint64_t logits, uint64_t bitmask, uint64_t rows, int64_t n, int64_t vocab,
                                      int64_t width, int act) {
  VT_CAPTURE(vt_apply_token_bitmask(logits, bitmask, rows, n, vocab, width, act));
  if (check_act("vt_apply_token_bitmask", act)) return 1;
  if (check_args(logits, bitmask, rows, n, vocab, width)) return 1;
  if (n == 0 || vocab == 0) return 0;
  const int32_t* r = ptr<const int32_t>(rows);
  for (int64_t i = 0; i < n; i++)
    if (r[i] < 0) return set_error("vt_apply_token_bitmask: row index %d at %lld is negative", r[i], (long long)i);
  float* x = ptr<float>(logits);
  const uint32_t* mask = ptr<const uint32_t>(bitmask);
  parallel_for(n, double(vocab), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) {
      float* row = x + int64_t(r[i]) * vocab;      // [vocab]
      const uint32_t* words = mask + i * width;    // [width]
      for (int64_t t = 0; t < vocab; t++)
        if (!((words[t >> 5] >> (t & 31)) & 1u)) row[t] = -INFINITY;
    }
  });
  return 0;
}
