// The CPU library has no CUDA graphs: every graph entry point fails (destroying
// the null handle excepted), and the engine runs its steps eagerly.
#include "common.h"

using namespace vt;

namespace {
const char* const kNoGraphs = "CUDA graphs are not available on the CPU backend";
}

extern "C" {

int vt_graph_begin(void) { return set_error("%s", kNoGraphs); }

uint64_t vt_graph_end(void) {
  set_error("%s", kNoGraphs);
  return 0;
}

int vt_graph_launch(uint64_t graph) {
  (void)graph;
  return set_error("%s", kNoGraphs);
}

int vt_graph_destroy(uint64_t graph) { return graph == 0 ? 0 : set_error("%s", kNoGraphs); }

}  // extern "C"
