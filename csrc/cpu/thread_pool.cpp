// The fixed thread pool behind every op: started by vt_init, its threads live
// until the next vt_init (or process exit). The calling thread is worker 0.
// NOTE: a worker spins for a short while after each op (ops come back to back
// within a forward pass; VLLM_TS_CPU_SPIN_US, default 200), then sleeps on a
// futex on the generation counter; the caller only makes the wake syscall when
// some worker is asleep. A worker joins an op by incrementing `active` and then
// checking that the op is still open; the caller closes the op when its chunks are
// all handed out and waits only for the workers that joined (both sides are
// sequentially consistent, so either the caller sees the join or the worker sees
// the close).
//   Chunks are dealt in contiguous ranges, one per thread, each with its own claim
// counter on its own cache line: a thread claims its own range's chunks in order
// (one long memory stream, no contended atomic), then helps the other ranges from
// their front. A thread never holds more than the one chunk it runs, so a worker
// that never joins or is preempted costs at most one chunk's wait.
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define VT_PAUSE() _mm_pause()
#else
#define VT_PAUSE() ((void)0)
#endif

namespace vt {
namespace {

void futex_wait(std::atomic<uint32_t>* word, uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}
void futex_wake(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, 0x7fffffff, nullptr, nullptr, 0);
}

int64_t spin_us_from_env() {
  const char* s = getenv("VLLM_TS_CPU_SPIN_US");
  return s ? atoll(s) : 200;
}

struct Pool {
  int nthreads = 1;
  int64_t spin_us = spin_us_from_env();
  std::vector<std::thread> threads;
  std::atomic<uint32_t> generation{0};  // futex word: bumped once per op (and to stop)
  std::atomic<uint32_t> open{0};        // generation of the op that workers may join, 0: none
  std::atomic<uint32_t> active{0};      // futex word: workers inside the current op
  std::atomic<int> worker_sleepers{0};
  std::atomic<int> caller_sleeping{0};
  std::atomic<bool> stopping{false};
  struct alignas(64) Range {
    std::atomic<int64_t> next{0};
    int64_t end = 0;
  };
  std::unique_ptr<Range[]> ranges{new Range[1]};
  ChunkFn fn = nullptr;
  void* ctx = nullptr;
  std::mutex dispatch;  // one op at a time, whichever JS thread calls

  ~Pool() {
    if (!threads.empty()) stop();
  }

  void run_chunks(int self) {
    for (int k = 0; k < nthreads; k++) {
      Range& r = ranges[(self + k) % nthreads];
      for (int64_t c; (c = r.next.fetch_add(1, std::memory_order_relaxed)) < r.end;) fn(ctx, c);
    }
  }

  // Spins until the generation moves past `seen` for at most spin_us, then sleeps.
  uint32_t await_op(uint32_t seen) {
    auto start = std::chrono::steady_clock::now();
    for (int i = 0;; i++) {
      uint32_t g = generation.load(std::memory_order_acquire);
      if (g != seen) return g;
      VT_PAUSE();
      if ((i & 255) == 255 && std::chrono::steady_clock::now() - start > std::chrono::microseconds(spin_us)) break;
    }
    worker_sleepers.fetch_add(1);
    uint32_t g;
    while ((g = generation.load()) == seen) futex_wait(&generation, seen);
    worker_sleepers.fetch_sub(1);
    return g;
  }

  void worker(int self) {
    uint32_t seen = 0;
    for (;;) {
      seen = await_op(seen);
      if (stopping.load()) return;
      active.fetch_add(1);
      if (open.load() == seen) run_chunks(self);
      if (active.fetch_sub(1) == 1 && caller_sleeping.load()) futex_wake(&active);
    }
  }

  void start(int n) {
    nthreads = n;
    ranges.reset(new Range[n]);
    stopping.store(false);
    for (int t = 1; t < n; t++) threads.emplace_back(&Pool::worker, this, t);
  }

  void stop() {
    stopping.store(true);
    generation.fetch_add(1);
    futex_wake(&generation);
    for (auto& t : threads) t.join();
    threads.clear();
    nthreads = 1;
  }

  void run(ChunkFn f, void* c, int64_t n) {
    std::lock_guard<std::mutex> lock(dispatch);
    fn = f;
    ctx = c;
    for (int t = 0; t < nthreads; t++) {
      ranges[t].next.store(n * t / nthreads, std::memory_order_relaxed);
      ranges[t].end = n * (t + 1) / nthreads;
    }
    uint32_t g = generation.load() + 1;
    if (g == 0) g = 1;  // 0 means "closed"
    open.store(g);
    generation.store(g);
    if (worker_sleepers.load() > 0) futex_wake(&generation);
    run_chunks(0);
    open.store(0);
    for (int i = 0;; i++) {
      uint32_t a = active.load();
      if (a == 0) return;
      VT_PAUSE();
      if (i > (1 << 14)) {  // a joined worker was preempted mid-chunk: stop burning the core
        caller_sleeping.store(1);
        while ((a = active.load()) != 0) futex_wait(&active, a);
        caller_sleeping.store(0);
        return;
      }
    }
  }
};

Pool pool;
std::mutex init_lock;

}  // namespace

void pool_run(ChunkFn fn, void* ctx, int64_t n_chunks, double work) {
  // ~30k elementary operations cost about as much as waking a worker.
  if (pool.nthreads == 1 || n_chunks <= 1 || work < 3e4) {
    for (int64_t c = 0; c < n_chunks; c++) fn(ctx, c);
    return;
  }
  pool.run(fn, ctx, n_chunks);
}

}  // namespace vt

using namespace vt;

extern "C" int vt_init(int device_index, int num_threads) {
  if (device_index != 0) return set_error("the CPU library has one device (index 0), %d was asked for", device_index);
  int n = num_threads > 0 ? num_threads : int(std::thread::hardware_concurrency());
  if (n < 1) n = 1;
  if (n > 1024) return set_error("num_threads %d is more than the 1024 the CPU library supports", num_threads);
  std::lock_guard<std::mutex> lock(init_lock);
  std::lock_guard<std::mutex> quiet(pool.dispatch);
  if (n == pool.nthreads) return 0;
  if (!pool.threads.empty()) pool.stop();
  pool.start(n);
  return 0;
}

extern "C" int vt_num_threads(void) { return pool.nthreads; }
