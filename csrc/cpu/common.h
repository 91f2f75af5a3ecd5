// Shared by the CPU ops: error reporting, argument checks, the thread pool API and
// scalar dtype conversions.
#pragma once
#include <stdint.h>
#include <string.h>

#include <functional>
#include <type_traits>

#include "../ops.h"

namespace vt {

// Sets the calling thread's last error (printf-style) and returns 1, so that an op
// can `return set_error("...")` (the same name as in the CUDA library).
int set_error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

const char* dtype_name(int dtype);

// Activations must be f32 on the CPU library.
int check_act(const char* op, int act);
// A weight dtype must be f32, f16 or bf16.
int check_wdt(const char* op, int wdt);

template <class T>
inline T* ptr(uint64_t addr) {
  return reinterpret_cast<T*>(static_cast<uintptr_t>(addr));
}

// ---- thread pool ------------------------------------------------------------
// NOTE: an op is cut into independent chunks; each thread first claims, in order,
// the chunks of its own contiguous range, then helps with the others'. A worker
// joins an op only while the caller still has chunks to hand out, so a worker
// that the OS has not scheduled (2 vCPUs shared with Node's own threads) costs
// nothing: the caller does its chunks. Chunk boundaries never depend on the thread count, and no chunk reduces
// into another, so results are bit-identical for any number of threads.
using ChunkFn = void (*)(void* ctx, int64_t chunk);
// Runs fn on chunks [0, n_chunks), on the caller alone when `work` (a rough count
// of elementary operations) is too small to pay for waking the pool.
void pool_run(ChunkFn fn, void* ctx, int64_t n_chunks, double work);

template <class F>
inline void parallel_chunks(int64_t n_chunks, double work, F&& f) {
  using Fn = std::remove_reference_t<F>;
  pool_run([](void* c, int64_t chunk) { (*static_cast<Fn*>(c))(chunk); }, &f, n_chunks, work);
}

// f(begin, end) over [0, n) in chunks of about `min_work` operations (at least one
// item each); cost = operations per item.
template <class F>
inline void parallel_for(int64_t n, double cost, F&& f, double min_work = 32768) {
  if (n <= 0) return;
  int64_t grain = cost >= min_work ? 1 : int64_t(min_work / (cost > 1 ? cost : 1));
  parallel_chunks((n + grain - 1) / grain, double(n) * cost, [&](int64_t c) {
    int64_t b = c * grain, e = b + grain < n ? b + grain : n;
    f(b, e);
  });
}

// ---- graphs (graph.cpp) ---------------------------------------------------------
// Between vt_graph_begin and vt_graph_end an op called on the capturing thread is
// recorded with its arguments instead of run (as a CUDA stream capture records
// kernels); vt_graph_launch replays the recorded ops in order, inside one call.
bool graph_capturing();
// `call`: the op's call as written (a string literal), for VLLM_TS_CPU_GRAPH_PROFILE.
int graph_record(std::function<int()> op, const char* call);
// Fails the capture under way on this thread (if any) for a host copy; 0 when none.
int graph_fail_host_copy(const char* op);

// First statement of a capturable op: VT_CAPTURE(vt_op(its, own, arguments));
#define VT_CAPTURE(call)                                                \
  do {                                                                  \
    if (::vt::graph_capturing()) return ::vt::graph_record([=] { return call; }, #call); \
  } while (0)

// ---- scalar dtype conversions --------------------------------------------------
struct bf16 {
  uint16_t bits;
};
struct f16 {
  uint16_t bits;
};

inline float to_f32(float x) { return x; }
inline float to_f32(bf16 x) {
  uint32_t u = uint32_t(x.bits) << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
float f16_bits_to_f32(uint16_t h);
inline float to_f32(f16 x) { return f16_bits_to_f32(x.bits); }

// Round to nearest even, NaN kept quiet (as torch).
inline uint16_t f32_to_bf16_bits(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  if ((x & 0x7f800000u) == 0x7f800000u && (x & 0x7fffffu)) return uint16_t((x >> 16) | 0x40);
  return uint16_t((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
uint16_t f32_to_f16_bits(float f);

}  // namespace vt
