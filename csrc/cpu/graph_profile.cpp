// VLLM_TS_CPU_GRAPH_PROFILE (see graph_profile.h): off the replay's path unless set.
#include "graph_profile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <chrono>
#include <string>

namespace vt {

bool graph_profiling() {
  static const bool on = [] {
    const char* s = getenv("VLLM_TS_CPU_GRAPH_PROFILE");
    return s && *s && strcmp(s, "0") != 0;
  }();
  return on;
}

int launch_profiled(const std::vector<std::function<int()>>& ops, GraphProfile& p) {
  if (p.ns.size() != ops.size()) p.ns.assign(ops.size(), 0.0);
  p.launches++;
  for (size_t i = 0; i < ops.size(); i++) {
    const auto t0 = std::chrono::steady_clock::now();
    if (int rc = ops[i]()) return rc;
    p.ns[i] += std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  }
  return 0;
}

void print_profile(uint64_t graph, const std::vector<const char*>& calls, const GraphProfile& p) {
  struct Row {
    std::string name;
    int count = 0;
    double ns = 0;
  };
  std::vector<Row> rows;
  double total = 0;
  for (size_t i = 0; i < p.ns.size() && i < calls.size(); i++) {
    const char* paren = strchr(calls[i], '(');
    std::string name(calls[i], paren ? size_t(paren - calls[i]) : strlen(calls[i]));
    Row* r = nullptr;
    for (auto& x : rows)
      if (x.name == name) r = &x;
    if (!r) {
      rows.push_back({name, 0, 0});
      r = &rows.back();
    }
    r->count++;
    r->ns += p.ns[i];
    total += p.ns[i];
  }
  const double L = double(p.launches);
  fprintf(stderr, "vllm-ts CPU graph 0x%llx: %zu ops, %lld launches, %.1f us per launch\n", (unsigned long long)graph,
          calls.size(), (long long)p.launches, total / L / 1e3);
  for (const auto& r : rows)
    fprintf(stderr, "  %-24s x%-4d %9.1f us per launch  %8.2f us per call  %5.1f%%\n", r.name.c_str(), r.count,
            r.ns / L / 1e3, r.ns / L / 1e3 / r.count, total > 0 ? 100.0 * r.ns / total : 0.0);
}

}  // namespace vt
