// Private to graph.cpp: VLLM_TS_CPU_GRAPH_PROFILE=1 times each op of a CPU graph at
// every launch and prints, when the graph is destroyed, the mean time per launch by
// op (a tool for benchmarks: where a decode step's time goes, without JavaScript).
#pragma once
#include <stdint.h>

#include <functional>
#include <vector>

namespace vt {

struct GraphProfile {
  std::vector<double> ns;  // [ops]: summed over launches
  int64_t launches = 0;
};

// Whether VLLM_TS_CPU_GRAPH_PROFILE is set (read once).
bool graph_profiling();
// Runs the ops in order, timing each; returns the first failing op's code.
int launch_profiled(const std::vector<std::function<int()>>& ops, GraphProfile& p);
// To stderr: ops, launches, mean microseconds per launch, then per op name (first seen
// first): count, microseconds per launch, per call, share.
void print_profile(uint64_t graph, const std::vector<const char*>& calls, const GraphProfile& p);

}  // namespace vt
