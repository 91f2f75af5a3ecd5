// CUDA graphs of the library's stream: capture a decode step once, replay it with
// one launch. The handle returned to the caller is the instantiated graph.
//
// NOTE: capture mode cudaStreamCaptureModeThreadLocal. Everything the ops enqueue
// goes on g.stream, cuBLASLt's matmuls included (cublasLtMatmul only launches
// kernels on the stream it is given, and its workspace is allocated once at
// vt_init), so all of it is captured. Thread-local mode makes an unsafe call on
// the capturing thread (a synchronous copy, vt_copy_d2h's synchronize, a plain
// cudaMalloc) fail the capture instead of slipping out of the graph, while other
// threads of the process (a loader, the HTTP server's own work) stay free to use
// CUDA; global mode would let them break the capture. Relaxed mode would accept
// those calls silently and record a graph without them. The caller must have run
// each captured op once eagerly before (cuBLASLt heuristics, weight conversions and
// kernel attributes are set up on first use), and must not allocate or free
// (vt_malloc / vt_free) between vt_graph_begin and vt_graph_end.
#include <cuda_profiler_api.h>

#include <cstdlib>
#include <mutex>
#include <unordered_set>

#include "common.cuh"

using namespace vt;

namespace {
std::mutex graphs_mutex;
std::unordered_set<uint64_t> live_graphs;  // handles returned by vt_graph_end, not yet destroyed

bool is_live(uint64_t h) {
  std::lock_guard<std::mutex> lock(graphs_mutex);
  return live_graphs.count(h) != 0;
}
}  // namespace

extern "C" {

int vt_graph_begin(void) {
  VT_READY();
  cudaStreamCaptureStatus status;
  VT_CUDA(cudaStreamIsCapturing(g.stream, &status));
  if (status != cudaStreamCaptureStatusNone)
    return set_error("vt_graph_begin: a capture is already in progress on the library's stream; end it with vt_graph_end first");
  VT_CUDA(cudaStreamBeginCapture(g.stream, cudaStreamCaptureModeThreadLocal));
  return 0;
}

uint64_t vt_graph_end(void) {
  if (ensure_ready() != 0) return 0;
  cudaStreamCaptureStatus status;
  cudaError_t e = cudaStreamIsCapturing(g.stream, &status);
  if (e != cudaSuccess) {
    cudaGetLastError();
    set_error("vt_graph_end: cudaStreamIsCapturing failed: %s", cudaGetErrorString(e));
    return 0;
  }
  if (status == cudaStreamCaptureStatusNone) {
    set_error("vt_graph_end: no capture is in progress; call vt_graph_begin first");
    return 0;
  }
  cudaGraph_t graph = nullptr;
  e = cudaStreamEndCapture(g.stream, &graph);
  if (e != cudaSuccess) {
    cudaGetLastError();
    if (graph) cudaGraphDestroy(graph);
    set_error("vt_graph_end: the capture failed (%s): an op between vt_graph_begin and vt_graph_end did something a graph cannot "
              "hold (a copy to or from the host, a synchronize, an allocation); run those outside the captured region",
              cudaGetErrorString(e));
    return 0;
  }
  cudaGraphExec_t exec = nullptr;
  e = cudaGraphInstantiate(&exec, graph, 0);
  // The executable graph is independent of the graph it was made from.
  cudaGraphDestroy(graph);
  if (e != cudaSuccess) {
    cudaGetLastError();
    set_error("vt_graph_end: cudaGraphInstantiate failed: %s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
    return 0;
  }
  uint64_t h = (uint64_t)(uintptr_t)exec;
  std::lock_guard<std::mutex> lock(graphs_mutex);
  live_graphs.insert(h);
  return h;
}

int vt_graph_launch(uint64_t graph) {
  VT_READY();
  if (!is_live(graph))
    return set_error("vt_graph_launch: 0x%llx is not a live graph handle (from vt_graph_end, not destroyed)", (unsigned long long)graph);
  // Profiling aid: VLLM_TS_PROFILE_GRAPH_LAUNCH=N brackets the N-th replay (from 1)
  // with cudaProfilerStart/Stop, so `ncu --profile-from-start off` sees one decode step.
  static const long profile_at = [] {
    const char* v = std::getenv("VLLM_TS_PROFILE_GRAPH_LAUNCH");
    return v ? std::atol(v) : 0L;
  }();
  static long launches = 0;
  const bool profile = profile_at > 0 && ++launches == profile_at;
  if (profile) VT_CUDA(cudaProfilerStart());
  VT_CUDA(cudaGraphLaunch((cudaGraphExec_t)(uintptr_t)graph, g.stream));
  if (profile) {
    VT_CUDA(cudaStreamSynchronize(g.stream));
    VT_CUDA(cudaProfilerStop());
  }
  return 0;
}

int vt_graph_destroy(uint64_t graph) {
  if (!graph) return 0;
  VT_READY();
  {
    std::lock_guard<std::mutex> lock(graphs_mutex);
    if (!live_graphs.erase(graph))
      return set_error("vt_graph_destroy: 0x%llx is not a live graph handle (destroyed twice?)", (unsigned long long)graph);
  }
  // A launch still running completes first; its resources are released after it.
  VT_CUDA(cudaGraphExecDestroy((cudaGraphExec_t)(uintptr_t)graph));
  return 0;
}

}  // extern "C"
