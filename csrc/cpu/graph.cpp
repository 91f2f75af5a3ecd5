// CPU graphs: a decode step's ops recorded once and replayed inside the library,
// so that a step costs one call from JavaScript instead of one per op (the CPU twin
// of the CUDA library's graphs, through the same vt_graph_* entry points).
// NOTE: recording is per thread: only the thread between vt_graph_begin and
// vt_graph_end records (other JavaScript threads' ops run as usual). An op is
// recorded with its arguments by value (addresses, shapes); what those addresses
// hold is read when the graph is launched, so inputs written into the same
// buffers before each launch are what it computes on. A copy to or from the host
// during a capture fails it, as on CUDA (a graph holds device work only). Argument
// errors surface at launch, where the failing op's message is the last error.
// VLLM_TS_CPU_GRAPH_PROFILE=1 times every op of every launch (graph_profile.cpp).
#include <memory>
#include <mutex>
#include <unordered_set>
#include <vector>

#include "common.h"
#include "graph_profile.h"

namespace vt {
namespace {

struct Graph {
  std::vector<std::function<int()>> ops;
  std::vector<const char*> calls;  // ops[i] as written
  GraphProfile profile;
  bool failed = false;
};

thread_local Graph* capturing = nullptr;
std::mutex live_lock;
std::unordered_set<uint64_t> live_graphs;  // handles returned by vt_graph_end, not yet destroyed

bool is_live(uint64_t h) {
  std::lock_guard<std::mutex> lock(live_lock);
  return live_graphs.count(h) != 0;
}

}  // namespace

bool graph_capturing() { return capturing != nullptr; }

int graph_record(std::function<int()> op, const char* call) {
  capturing->ops.push_back(std::move(op));
  capturing->calls.push_back(call);
  return 0;
}

int graph_fail_host_copy(const char* op) {
  if (!capturing) return 0;
  capturing->failed = true;
  return set_error("%s: a copy to or from the host cannot be part of a graph (capture under way on this thread)", op);
}

}  // namespace vt

using namespace vt;

extern "C" {

int vt_graph_begin(void) {
  if (capturing) return set_error("vt_graph_begin: a capture is already in progress on this thread; end it with vt_graph_end first");
  capturing = new Graph();
  return 0;
}

uint64_t vt_graph_end(void) {
  if (!capturing) {
    set_error("vt_graph_end: no capture is in progress; call vt_graph_begin first");
    return 0;
  }
  std::unique_ptr<Graph> g(capturing);
  capturing = nullptr;
  if (g->failed) {
    set_error("vt_graph_end: the capture failed: an op between vt_graph_begin and vt_graph_end copied to or from the host");
    return 0;
  }
  const uint64_t h = uint64_t(reinterpret_cast<uintptr_t>(g.release()));
  std::lock_guard<std::mutex> lock(live_lock);
  live_graphs.insert(h);
  return h;
}

int vt_graph_launch(uint64_t graph) {
  if (!is_live(graph))
    return set_error("vt_graph_launch: 0x%llx is not a live graph handle (from vt_graph_end, not destroyed)", (unsigned long long)graph);
  if (capturing) return set_error("vt_graph_launch: called while this thread captures a graph");
  Graph* g = ptr<Graph>(graph);
  if (graph_profiling()) return launch_profiled(g->ops, g->profile);
  for (auto& op : g->ops)
    if (int rc = op()) return rc;
  return 0;
}

int vt_graph_destroy(uint64_t graph) {
  if (graph == 0) return 0;
  {
    std::lock_guard<std::mutex> lock(live_lock);
    if (!live_graphs.erase(graph))
      return set_error("vt_graph_destroy: 0x%llx is not a live graph handle (destroyed twice?)", (unsigned long long)graph);
  }
  Graph* g = ptr<Graph>(graph);
  if (g->profile.launches) print_profile(graph, g->calls, g->profile);
  delete g;
  return 0;
}

}  // extern "C"
