// Memory read bandwidth of this machine: sums a 1 GiB buffer with 1..N threads
// (the floor that batch-1 decode is compared with). Prints "threads GB/s" lines.
//   membw [max threads] [buffer MiB, default 1024]: a buffer the size of a small
//   model's weights measures the cache level they stay in, as decode rereads them.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>
#include <immintrin.h>

static double sum_range(const float* p, size_t n) {
#if defined(__AVX512F__)
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    a0 = _mm512_add_ps(a0, _mm512_loadu_ps(p + i));
    a1 = _mm512_add_ps(a1, _mm512_loadu_ps(p + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_loadu_ps(p + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_loadu_ps(p + i + 48));
  }
  double s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  for (; i < n; i++) s += p[i];
  return s;
#else
  double s = 0;
  for (size_t i = 0; i < n; i++) s += p[i];
  return s;
#endif
}

int main(int argc, char** argv) {
  const size_t bytes = (argc > 2 ? size_t(atof(argv[2]) * 1024) : size_t(1024) * 1024) / 64 * 64 * 1024;
  const size_t n = bytes / sizeof(float);
  float* buf = static_cast<float*>(aligned_alloc(64, bytes));
  for (size_t i = 0; i < n; i++) buf[i] = float(i & 1023);
  int max_threads = argc > 1 ? atoi(argv[1]) : int(std::thread::hardware_concurrency());
  for (int t = 1; t <= max_threads; t++) {
    double best = 0;
    const int reps = bytes < (size_t(256) << 20) ? 200 : 5;  // a small buffer: many passes (the first warms it)
    for (int rep = 0; rep < reps; rep++) {
      std::vector<std::thread> ts;
      std::vector<double> sums(t);
      auto t0 = std::chrono::steady_clock::now();
      for (int k = 0; k < t; k++)
        ts.emplace_back([&, k] { sums[k] = sum_range(buf + n / t * k, n / t); });
      for (auto& th : ts) th.join();
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (sums[0] < 0) printf("impossible\n");
      best = std::max(best, bytes / secs / 1e9);
    }
    printf("%d %.2f\n", t, best);
  }
  free(buf);
  return 0;
}
