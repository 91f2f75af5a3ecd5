// vt_sample and vt_logprobs on the CPU: the twins of csrc/cuda/sampling.cu and
// logprobs.cu. Rows are independent and split over the thread pool. Sampling
// uses csrc/sampling_math.h's fixed-point masses, so it picks the token the CUDA
// kernel picks; the choices below (selects, sorts) may differ from the kernel's
// as long as they compute the same exact quantities.
#include <math.h>

#include <algorithm>
#include <vector>

#include "../sampling_math.h"
#include "common.h"

namespace vt {
namespace {

using namespace smp;

struct Candidate {
  uint32_t key;  // |x| key (sampling) or logit key (logprobs)
  uint64_t mass;
};

struct Scratch {
  std::vector<uint32_t> keys;       // [vocab]
  std::vector<Candidate> cands;     // tokens of top-p's crossing bin
  std::vector<uint64_t> bin_mass;   // [kBins]
  std::vector<int32_t> order;       // [vocab] token ids (logprobs' top k)
};
thread_local Scratch scratch;

struct SampleRow {
  float temperature, top_p, min_p, uniform;
  int32_t top_k;
};

// The k-th largest logit key (1 <= k <= vocab).
uint32_t kth_key(const float* row, int64_t vocab, int64_t k) {
  std::vector<uint32_t>& keys = scratch.keys;
  keys.resize(vocab);
  for (int64_t i = 0; i < vocab; i++) keys[i] = logit_key(row[i]);
  std::nth_element(keys.begin(), keys.begin() + (k - 1), keys.end(), [](uint32_t a, uint32_t b) { return a > b; });
  return keys[k - 1];
}

int32_t sample_row(const float* row, int64_t vocab, const SampleRow& p) {
  uint32_t best = logit_key(row[0]);
  int32_t argmax = 0;
  for (int64_t i = 1; i < vocab; i++) {
    uint32_t key = logit_key(row[i]);
    if (key > best) {
      best = key;
      argmax = int32_t(i);
    }
  }
  const float m = key_value(best);
  if (!(p.temperature >= kGreedyTemperature) || !std::isfinite(m)) return argmax;

  const uint32_t k_floor = p.top_k > 0 && p.top_k < vocab ? kth_key(row, vocab, p.top_k) : 0;
  const float inv_t = 1.0f / p.temperature;
  // The same steps as the kernel: x of a token that survives top-k, then its mass.
  auto scaled = [&](float v, float* x) {
    if (logit_key(v) < k_floor) return false;
    *x = (v - m) * inv_t;
    return true;
  };
  auto mass = [&](float x) -> uint64_t {
    float w = exp_nonpos(x);
    return w >= p.min_p ? mass_of(w) : 0;
  };

  const bool use_top_p = p.top_p < 1.0f;
  std::vector<uint64_t>& bin_mass = scratch.bin_mass;
  if (use_top_p) bin_mass.assign(kBins, 0);
  uint64_t total = 0;
  for (int64_t i = 0; i < vocab; i++) {
    float x;
    if (!scaled(row[i], &x)) continue;
    uint64_t ms = mass(x);
    total += ms;
    if (use_top_p && ms) bin_mass[int(fabsf(x) * kBinsPerNat)] += ms;
  }
  if (total == 0) return argmax;

  // Top-p: the smallest |x| key whose cumulative mass (ascending |x|) reaches the
  // target; found in the crossing bin of the 64-per-nat histogram, sorted.
  uint32_t kx = 0xffffffffu;
  uint64_t kept = total;
  if (use_top_p) {
    const uint64_t target = top_p_target(total, p.top_p);
    uint64_t above = 0;
    int c = 0;
    while (c < kBins - 1 && above + bin_mass[c] < target) above += bin_mass[c++];
    const uint32_t lo = abs_key(float(c) / kBinsPerNat), hi = abs_key(float(c + 1) / kBinsPerNat) - 1;
    std::vector<Candidate>& cands = scratch.cands;
    cands.clear();
    for (int64_t i = 0; i < vocab; i++) {
      float x;
      if (!scaled(row[i], &x)) continue;
      uint32_t a = abs_key(x);
      if (a < lo || a > hi) continue;
      uint64_t ms = mass(x);
      if (ms) cands.push_back({a, ms});
    }
    std::sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) { return a.key < b.key; });
    for (size_t j = 0; j < cands.size();) {
      size_t e = j;
      uint64_t group = 0;  // ties share one key and are kept or dropped together
      for (; e < cands.size() && cands[e].key == cands[j].key; e++) group += cands[e].mass;
      above += group;
      if (above >= target || e == cands.size()) {
        kx = cands[j].key;
        kept = above;
        break;
      }
      j = e;
    }
  }

  const uint64_t target = draw_target(kept, p.uniform);
  uint64_t cum = 0;
  for (int64_t i = 0; i < vocab; i++) {
    float x;
    if (!scaled(row[i], &x) || abs_key(x) > kx) continue;
    cum += mass(x);
    if (cum > target) return int32_t(i);
  }
  return argmax;  // unreachable: target < kept
}

int check_rows(const char* op, int64_t n, int64_t vocab) {
  if (n < 0) return set_error("%s: n = %lld rows is negative", op, (long long)n);
  if (vocab < 1 || vocab > kMaxVocab) return set_error("%s: vocab %lld is outside [1, %lld]", op, (long long)vocab, (long long)kMaxVocab);
  return 0;
}

}  // namespace
}  // namespace vt

using namespace vt;

extern "C" int vt_sample(uint64_t out_ids, uint64_t logits, uint64_t temperature, uint64_t top_k, uint64_t top_p,
                         uint64_t min_p, uint64_t uniform, int64_t n, int64_t vocab, int act) {
  VT_CAPTURE(vt_sample(out_ids, logits, temperature, top_k, top_p, min_p, uniform, n, vocab, act));
  if (check_rows("vt_sample", n, vocab) || check_act("vt_sample", act)) return 1;
  if (n == 0) return 0;
  if (!out_ids || !logits || !temperature || !top_k || !top_p || !min_p || !uniform)
    return set_error("vt_sample: every tensor argument is required (one is 0)");
  int32_t* out = ptr<int32_t>(out_ids);
  const float* x = ptr<const float>(logits);
  const float *temp = ptr<const float>(temperature), *tp = ptr<const float>(top_p), *mp = ptr<const float>(min_p);
  const float* u = ptr<const float>(uniform);
  const int32_t* tk = ptr<const int32_t>(top_k);
  parallel_for(n, double(vocab) * 24, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++) out[r] = sample_row(x + r * vocab, vocab, SampleRow{temp[r], tp[r], mp[r], u[r], tk[r]});
  });
  return 0;
}

// out_logprobs, out_ids [n, k + 1]; out_ranks [n]
extern "C" int vt_logprobs(uint64_t out_logprobs, uint64_t out_ids, uint64_t out_ranks, uint64_t logits, uint64_t chosen,
                           int64_t n, int64_t vocab, int64_t k, int act) {
  VT_CAPTURE(vt_logprobs(out_logprobs, out_ids, out_ranks, logits, chosen, n, vocab, k, act));
  if (check_rows("vt_logprobs", n, vocab) || check_act("vt_logprobs", act)) return 1;
  if (k < 0 || k > vocab) return set_error("vt_logprobs: k = %lld top logprobs is outside [0, vocab = %lld]", (long long)k, (long long)vocab);
  if (n == 0) return 0;
  if (!out_logprobs || !out_ids || !out_ranks || !logits || !chosen)
    return set_error("vt_logprobs: every tensor argument is required (one is 0)");
  const float* x = ptr<const float>(logits);
  const int32_t* ch = ptr<const int32_t>(chosen);
  for (int64_t r = 0; r < n; r++)
    if (ch[r] < 0 || ch[r] >= vocab)
      return set_error("vt_logprobs: chosen token %d of row %lld is outside the vocabulary [0, %lld)", ch[r], (long long)r, (long long)vocab);
  float* lp = ptr<float>(out_logprobs);
  int32_t* ids = ptr<int32_t>(out_ids);
  int32_t* ranks = ptr<int32_t>(out_ranks);
  const double per_row = double(vocab) * (k < 64 ? 8 : 40);
  parallel_for(n, per_row, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++) {
      const float* row = x + r * vocab;
      float* lp_row = lp + r * (k + 1);
      int32_t* id_row = ids + r * (k + 1);
      // log-softmax over values with NaN read as -inf, as the kernel does
      uint32_t max_key = 0;
      for (int64_t i = 0; i < vocab; i++) max_key = std::max(max_key, logit_key(row[i]));
      const float m = key_value(max_key);
      double sum = 0;
      if (m != -INFINITY)
        for (int64_t i = 0; i < vocab; i++) sum += exp(double(key_value(logit_key(row[i]))) - double(m));
      const float lse = m == -INFINITY ? m : m + float(log(sum));
      const uint32_t key_c = logit_key(row[ch[r]]);
      int32_t greater = 0;
      for (int64_t i = 0; i < vocab; i++) greater += logit_key(row[i]) > key_c;
      lp_row[0] = key_value(key_c) - lse;
      id_row[0] = ch[r];
      ranks[r] = greater + 1;
      if (k == 0) continue;
      std::vector<int32_t>& order = scratch.order;
      std::vector<uint32_t>& keys = scratch.keys;
      order.resize(vocab);
      keys.resize(vocab);
      for (int64_t i = 0; i < vocab; i++) {
        order[i] = int32_t(i);
        keys[i] = logit_key(row[i]);
      }
      auto before = [&](int32_t a, int32_t b) { return keys[a] > keys[b] || (keys[a] == keys[b] && a < b); };
      std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
      for (int64_t j = 0; j < k; j++) {
        lp_row[1 + j] = key_value(keys[order[j]]) - lse;
        id_row[1 + j] = order[j];
      }
    }
  });
  return 0;
}
