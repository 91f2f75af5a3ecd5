// Mixture-of-experts routing on the CPU: router softmax + top-k, the token-to-expert
// permutation and the weighted un-permute (the grouped GEMM is in linear.cpp).
// All three are scalar loops over tiny data (T * E logits, T * k pairs) except the
// un-permute, which is threaded over tokens; each output is computed in one fixed order.
#include <math.h>

#include <vector>

#include "common.h"

using namespace vt;

extern "C" int vt_moe_topk_softmax(uint64_t topk_weights, uint64_t topk_ids, uint64_t logits, int64_t num_tokens,
                                   int64_t num_experts, int64_t k, int renormalize, int act) {
  VT_CAPTURE(vt_moe_topk_softmax(topk_weights, topk_ids, logits, num_tokens, num_experts, k, renormalize, act));
  if (check_act("vt_moe_topk_softmax", act)) return 1;
  if (num_tokens < 0 || num_experts <= 0 || num_experts > 1024 || k <= 0 || k > num_experts)
    return set_error("vt_moe_topk_softmax: bad shape tokens=%lld experts=%lld k=%lld (need 0 < k <= experts <= 1024)",
                     (long long)num_tokens, (long long)num_experts, (long long)k);
  if (num_tokens == 0) return 0;
  if (!topk_weights || !topk_ids || !logits) return set_error("vt_moe_topk_softmax: a required tensor address is null");
  const int64_t E = num_experts;
  parallel_for(num_tokens, double(E) * (k + 4), [&](int64_t b, int64_t e) {
    std::vector<float> p(E);
    std::vector<char> taken(E);
    for (int64_t t = b; t < e; t++) {
      const float* l = ptr<const float>(logits) + t * E;
      float m = -INFINITY;
      for (int64_t i = 0; i < E; i++) m = l[i] > m ? l[i] : m;
      float s = 0.f;
      for (int64_t i = 0; i < E; i++) s += (p[i] = expf(l[i] - m));
      for (int64_t i = 0; i < E; i++) p[i] /= s, taken[i] = 0;
      float* w = ptr<float>(topk_weights) + t * k;
      int32_t* id = ptr<int32_t>(topk_ids) + t * k;
      float sum = 0.f;
      for (int64_t j = 0; j < k; j++) {
        int64_t best = -1;
        // Strictly greater: the lowest id wins a tie; NaN never wins over a number.
        for (int64_t i = 0; i < E; i++)
          if (!taken[i] && (best < 0 || p[i] > p[best])) best = i;
        taken[best] = 1;
        w[j] = p[best];
        id[j] = int32_t(best);
        sum += p[best];
      }
      if (renormalize)
        for (int64_t j = 0; j < k; j++) w[j] /= sum;
    }
  });
  return 0;
}

extern "C" int vt_moe_permute(uint64_t expert_offsets, uint64_t sorted_token_ids, uint64_t inv_perm, uint64_t topk_ids,
                              int64_t num_pairs, int64_t num_experts, int64_t k) {
  VT_CAPTURE(vt_moe_permute(expert_offsets, sorted_token_ids, inv_perm, topk_ids, num_pairs, num_experts, k));
  if (num_pairs < 0 || num_experts <= 0 || k <= 0 || num_pairs % k != 0)
    return set_error("vt_moe_permute: bad shape pairs=%lld experts=%lld k=%lld", (long long)num_pairs,
                     (long long)num_experts, (long long)k);
  if (!expert_offsets || (num_pairs && (!sorted_token_ids || !inv_perm || !topk_ids)))
    return set_error("vt_moe_permute: a required tensor address is null");
  const int32_t* ids = ptr<const int32_t>(topk_ids);
  int32_t* off = ptr<int32_t>(expert_offsets);
  for (int64_t e = 0; e <= num_experts; e++) off[e] = 0;
  for (int64_t p = 0; p < num_pairs; p++) {
    if (ids[p] < 0 || ids[p] >= num_experts)
      return set_error("vt_moe_permute: expert id %d at pair %lld is outside [0, %lld)", ids[p], (long long)p,
                       (long long)num_experts);
    off[ids[p] + 1]++;
  }
  for (int64_t e = 0; e < num_experts; e++) off[e + 1] += off[e];
  // A counting sort, stable: pairs keep their order within an expert.
  std::vector<int32_t> next(off, off + num_experts);
  int32_t* sorted = ptr<int32_t>(sorted_token_ids);
  int32_t* inv = ptr<int32_t>(inv_perm);
  for (int64_t p = 0; p < num_pairs; p++) {
    const int32_t r = next[ids[p]]++;
    sorted[r] = int32_t(p / k);
    inv[p] = r;
  }
  return 0;
}

// The CUDA library fuses these two in one launch; on the CPU it is the two calls.
extern "C" int vt_moe_route(uint64_t topk_weights, uint64_t topk_ids, uint64_t expert_offsets, uint64_t sorted_token_ids,
                            uint64_t inv_perm, uint64_t logits, int64_t num_tokens, int64_t num_experts, int64_t k,
                            int renormalize, int act) {
  VT_CAPTURE(vt_moe_route(topk_weights, topk_ids, expert_offsets, sorted_token_ids, inv_perm, logits, num_tokens, num_experts, k, renormalize, act));
  if (vt_moe_topk_softmax(topk_weights, topk_ids, logits, num_tokens, num_experts, k, renormalize, act)) return 1;
  return vt_moe_permute(expert_offsets, sorted_token_ids, inv_perm, topk_ids, num_tokens * k, num_experts, k);
}

extern "C" int vt_moe_unpermute_sum(uint64_t out, uint64_t y, uint64_t topk_weights, uint64_t inv_perm, uint64_t shared,
                                    uint64_t shared_gate, int64_t num_tokens, int64_t k, int64_t hidden, int act) {
  VT_CAPTURE(vt_moe_unpermute_sum(out, y, topk_weights, inv_perm, shared, shared_gate, num_tokens, k, hidden, act));
  if (check_act("vt_moe_unpermute_sum", act)) return 1;
  if (num_tokens < 0 || k <= 0 || hidden <= 0)
    return set_error("vt_moe_unpermute_sum: bad shape tokens=%lld k=%lld hidden=%lld", (long long)num_tokens,
                     (long long)k, (long long)hidden);
  if (num_tokens == 0) return 0;
  if (!out || !y || !topk_weights || !inv_perm) return set_error("vt_moe_unpermute_sum: a required tensor address is null");
  parallel_for(num_tokens, double(hidden) * (k + 1), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; t++) {
      float* o = ptr<float>(out) + t * hidden;
      const float* w = ptr<const float>(topk_weights) + t * k;
      const int32_t* inv = ptr<const int32_t>(inv_perm) + t * k;
      for (int64_t i = 0; i < hidden; i++) o[i] = 0.f;
      for (int64_t j = 0; j < k; j++) {
        const float* row = ptr<const float>(y) + int64_t(inv[j]) * hidden;
        for (int64_t i = 0; i < hidden; i++) o[i] += w[j] * row[i];
      }
      if (shared) {
        const float g = shared_gate ? 1.f / (1.f + expf(-ptr<const float>(shared_gate)[t])) : 1.f;
        const float* s = ptr<const float>(shared) + t * hidden;
        for (int64_t i = 0; i < hidden; i++) o[i] += g * s[i];
      }
    }
  });
  return 0;
}
