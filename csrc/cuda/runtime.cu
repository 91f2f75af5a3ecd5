// Runtime entry points of the CUDA library: errors, device selection, the stream,
// memory, conversions and the dummy-weight generator.
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mutex>
#include <string>
#include <unordered_map>

#include "common.cuh"

namespace vt {

Runtime g;

namespace {
thread_local std::string last_error;
thread_local int thread_device = -1;
std::mutex init_mutex;
std::mutex alloc_mutex;
struct Allocation {
  uint64_t bytes;
  bool pooled;  // from cudaMallocAsync (else cudaMalloc)
};
std::unordered_map<uint64_t, Allocation> allocations;  // vt_malloc'd address -> its allocation
constexpr size_t kLtWorkspace = 32u << 20;
// NOTE: the decode attention's split-K partials are bounded by its grid (at most
// ~8 blocks per SM, each G heads x (head_dim + 2) floats), so one fixed buffer
// allocated here serves every call and keeps the op free of allocations (CUDA
// graph capture needs that).
constexpr size_t kAttnWorkspace = 32u << 20;
}  // namespace

int set_error(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  last_error = buf;
  return 1;
}

int check_launch(const char* op) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return set_error("%s: kernel launch failed: %s (%s)", op, cudaGetErrorString(e), cudaGetErrorName(e));
  return 0;
}

static int try_lt(LtApi* api, const char* path) {
  void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) return 0;
  auto sym = [&](const char* name) { return dlsym(h, name); };
  *(void**)&api->create = sym("cublasLtCreate");
  *(void**)&api->destroy = sym("cublasLtDestroy");
  *(void**)&api->status_string = sym("cublasLtGetStatusString");
  *(void**)&api->desc_create = sym("cublasLtMatmulDescCreate");
  *(void**)&api->desc_destroy = sym("cublasLtMatmulDescDestroy");
  *(void**)&api->desc_set = sym("cublasLtMatmulDescSetAttribute");
  *(void**)&api->layout_create = sym("cublasLtMatrixLayoutCreate");
  *(void**)&api->layout_destroy = sym("cublasLtMatrixLayoutDestroy");
  *(void**)&api->pref_create = sym("cublasLtMatmulPreferenceCreate");
  *(void**)&api->pref_destroy = sym("cublasLtMatmulPreferenceDestroy");
  *(void**)&api->pref_set = sym("cublasLtMatmulPreferenceSetAttribute");
  *(void**)&api->heuristic = sym("cublasLtMatmulAlgoGetHeuristic");
  *(void**)&api->matmul = sym("cublasLtMatmul");
  if (!api->create || !api->destroy || !api->desc_create || !api->desc_destroy || !api->desc_set || !api->layout_create ||
      !api->layout_destroy || !api->pref_create || !api->pref_destroy || !api->pref_set || !api->heuristic || !api->matmul) {
    dlclose(h);
    return 0;
  }
  snprintf(api->path, sizeof api->path, "%s", path);
  return 1;
}

const char* lt_load(LtApi* api) {
  const char* names[] = {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"};
  const char* env = getenv("VLLM_TS_CUBLASLT");
  if (env && *env) return try_lt(api, env) ? nullptr : "VLLM_TS_CUBLASLT does not name a loadable libcublasLt";
  std::string dirs[4];
  int nd = 0;
  Dl_info info;
  // cudart is linked statically; a shared cudart (if any) or the CUDA home tells where the toolkit is.
  if (const char* home = getenv("CUDA_HOME")) dirs[nd++] = std::string(home) + "/lib64/";
  if (dladdr((void*)&lt_load, &info) && info.dli_fname) {
    std::string self(info.dli_fname);
    dirs[nd++] = self.substr(0, self.rfind('/') + 1);
  }
  dirs[nd++] = "/usr/local/cuda/lib64/";
  dirs[nd++] = "";
  for (int d = 0; d < nd; d++)
    for (const char* n : names)
      if (try_lt(api, (dirs[d] + n).c_str())) return nullptr;
  return "libcublasLt.so.13/.12 not found (set VLLM_TS_CUBLASLT or add the CUDA toolkit's lib64 to LD_LIBRARY_PATH)";
}

static int init_locked(int device_index) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    cudaGetLastError();
    return set_error("vt_init: no CUDA device is available (%s)", e == cudaSuccess ? "0 devices" : cudaGetErrorString(e));
  }
  if (device_index < 0 || device_index >= count)
    return set_error("vt_init: device index %d is out of range (%d device%s visible)", device_index, count, count == 1 ? "" : "s");
  if (g.device == device_index) return 0;
  if (g.device >= 0) return set_error("vt_init: already initialized on device %d; one device per process", g.device);
  VT_CUDA(cudaSetDevice(device_index));
  thread_device = device_index;
  cudaDeviceProp prop;
  VT_CUDA(cudaGetDeviceProperties(&prop, device_index));
  if (prop.major < 8)
    return set_error("vt_init: %s is compute capability %d.%d; the CUDA kernels need 8.0 (Ampere) or newer", prop.name, prop.major, prop.minor);
  VT_CUDA(cudaStreamCreateWithFlags(&g.stream, cudaStreamNonBlocking));
  cudaMemPool_t pool;
  VT_CUDA(cudaDeviceGetDefaultMemPool(&pool, device_index));
  uint64_t keep = UINT64_MAX;
  VT_CUDA(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
  g.sm_count = prop.multiProcessorCount;
  g.smem_optin = (int)prop.sharedMemPerBlockOptin;
  VT_CUDA(cudaMalloc(&g.attn_workspace, kAttnWorkspace));
  g.attn_workspace_bytes = kAttnWorkspace;
  const char* why = lt_load(&g.lt);
  if (!why) {
    int st = g.lt.create(&g.lt.handle);
    if (st != 0) why = "cublasLtCreate failed";
  }
  if (!why) {
    VT_CUDA(cudaMalloc(&g.lt_workspace, kLtWorkspace));
    g.lt_workspace_bytes = kLtWorkspace;
    g.lt.ok = true;
  } else {
    fprintf(stderr, "vllm-ts: cuBLASLt unavailable (%s); vt_linear falls back to a slow built-in GEMM\n", why);
  }
  snprintf(g.name, sizeof g.name, "%s (%d SMs, sm_%d%d, %.1f GiB%s)", prop.name, prop.multiProcessorCount, prop.major, prop.minor,
           prop.totalGlobalMem / 1073741824.0, g.lt.ok ? "" : ", no cuBLASLt");
  g.device = device_index;
  return 0;
}

int ensure_ready() {
  if (g.device < 0) {
    std::lock_guard<std::mutex> lock(init_mutex);
    if (g.device < 0 && init_locked(0) != 0) return 1;
  }
  if (thread_device != g.device) {
    VT_CUDA(cudaSetDevice(g.device));
    thread_device = g.device;
  }
  return 0;
}

}  // namespace vt

using namespace vt;

namespace kernels {

__device__ __forceinline__ uint64_t splitmix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

template <typename T>
__global__ void fill_random_kernel(T* out, uint64_t n, uint64_t seed, float scale) {
  for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < n; i += (uint64_t)gridDim.x * blockDim.x) {
    uint64_t x = splitmix64(seed + i * 0x9E3779B97F4A7C15ULL);
    float u = (float)(x >> 40) * (1.0f / 16777216.0f);
    float v = __fmul_rn(__fsub_rn(__fmul_rn(2.0f, u), 1.0f), scale);
    out[i] = from_f32<T>(v);
  }
}

template <typename D, typename S>
__global__ void convert_kernel(D* out, const S* in, uint64_t n) {
  for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < n; i += (uint64_t)gridDim.x * blockDim.x)
    out[i] = from_f32<D>(to_f32(in[i]));
}

}  // namespace kernels
using namespace kernels;

namespace vt {
// Used by vt_linear to convert weights to the activation dtype.
int convert_on_stream(void* dst, int dst_dtype, const void* src, int src_dtype, uint64_t n) {
  if (n == 0) return 0;
  return dispatch_float(dst_dtype, "vt_convert", [&](auto dt) {
    using D = typename decltype(dt)::type;
    return dispatch_float(src_dtype, "vt_convert", [&](auto st) {
      using S = typename decltype(st)::type;
      if ((const void*)dst == src && sizeof(D) != sizeof(S))
        return set_error("vt_convert: in-place conversion between dtypes of different sizes (%d -> %d)", src_dtype, dst_dtype);
      convert_kernel<D, S><<<blocks_for((int64_t)n, 256, (int64_t)g.sm_count * 32), 256, 0, g.stream>>>((D*)dst, (const S*)src, n);
      return check_launch("vt_convert");
    });
  });
}
}  // namespace vt

extern "C" {

const char* vt_last_error(void) { return last_error.c_str(); }
const char* vt_backend_name(void) { return "cuda"; }

int vt_device_count(void) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
}

int vt_init(int device_index, int num_threads) {
  (void)num_threads;
  std::lock_guard<std::mutex> lock(init_mutex);
  if (init_locked(device_index) != 0) return 1;
  if (thread_device != g.device) {
    VT_CUDA(cudaSetDevice(g.device));
    thread_device = g.device;
  }
  return 0;
}

// The CUDA library has no host worker threads.
int vt_num_threads(void) { return 1; }

int vt_synchronize(void) {
  VT_READY();
  VT_CUDA(cudaStreamSynchronize(g.stream));
  return 0;
}

int vt_mem_info(uint64_t* free_bytes, uint64_t* total_bytes) {
  VT_READY();
  size_t f = 0, t = 0;
  VT_CUDA(cudaMemGetInfo(&f, &t));
  // Memory the pool holds for reuse but nothing uses is free for the caller.
  cudaMemPool_t pool;
  uint64_t reserved = 0, used = 0;
  if (cudaDeviceGetDefaultMemPool(&pool, g.device) == cudaSuccess &&
      cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &reserved) == cudaSuccess &&
      cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemCurrent, &used) == cudaSuccess && reserved > used)
    f += reserved - used;
  cudaGetLastError();
  if (free_bytes) *free_bytes = f;
  if (total_bytes) *total_bytes = t;
  return 0;
}

const char* vt_device_name(void) {
  if (ensure_ready() != 0) return "CUDA (no device)";
  return g.name;
}

uint64_t vt_malloc(uint64_t bytes) {
  if (ensure_ready() != 0) return 0;
  void* p = nullptr;
  // NOTE: the stream-ordered pool (cudaMallocAsync) keeps freed memory for reuse
  // (release threshold = max, set at init), so per-step temporaries cost no
  // cudaMalloc/cudaFree (cudaFree synchronizes the whole device).
  bool pooled = true;
  cudaError_t e = cudaMallocAsync(&p, bytes ? bytes : 1, g.stream);
  if (e == cudaSuccess && ((uintptr_t)p & 63) != 0) {
    cudaFreeAsync(p, g.stream);
    pooled = false;
    e = cudaMalloc(&p, bytes ? bytes : 1);
  }
  if (e != cudaSuccess) {
    cudaGetLastError();
    uint64_t f = 0, t = 0;
    vt_mem_info(&f, &t);
    set_error("vt_malloc: %llu bytes failed: %s (%.2f GiB free of %.2f GiB)", (unsigned long long)bytes, cudaGetErrorString(e),
              f / 1073741824.0, t / 1073741824.0);
    return 0;
  }
  std::lock_guard<std::mutex> lock(alloc_mutex);
  allocations[(uint64_t)(uintptr_t)p] = Allocation{bytes, pooled};
  return (uint64_t)(uintptr_t)p;
}

int vt_free(uint64_t ptr) {
  if (!ptr) return 0;
  VT_READY();
  Allocation a;
  {
    std::lock_guard<std::mutex> lock(alloc_mutex);
    auto it = allocations.find(ptr);
    if (it == allocations.end()) return set_error("vt_free: 0x%llx was not returned by vt_malloc (or was freed twice)", (unsigned long long)ptr);
    a = it->second;
    allocations.erase(it);
  }
  forget_converted(ptr, a.bytes);
  // Stream-ordered: the memory returns to the pool once the work queued before it is done.
  if (a.pooled) VT_CUDA(cudaFreeAsync((void*)(uintptr_t)ptr, g.stream));
  else VT_CUDA(cudaFree((void*)(uintptr_t)ptr));
  return 0;
}

void* vt_host_ptr(uint64_t addr) {
  (void)addr;
  set_error("vt_host_ptr: CUDA device memory has no host address; copy it with vt_copy_d2h");
  return nullptr;
}

int vt_copy_h2d(uint64_t dst, const void* src, uint64_t bytes) {
  if (!bytes) return 0;
  VT_READY();
  // Pageable host memory: the call returns once src has been staged, so the caller may reuse it.
  VT_CUDA(cudaMemcpyAsync((void*)(uintptr_t)dst, src, bytes, cudaMemcpyHostToDevice, g.stream));
  return 0;
}

int vt_copy_d2h(void* dst, uint64_t src, uint64_t bytes) {
  if (!bytes) return 0;
  VT_READY();
  VT_CUDA(cudaMemcpyAsync(dst, (const void*)(uintptr_t)src, bytes, cudaMemcpyDeviceToHost, g.stream));
  VT_CUDA(cudaStreamSynchronize(g.stream));
  return 0;
}

int vt_copy_d2d(uint64_t dst, uint64_t src, uint64_t bytes) {
  if (!bytes) return 0;
  VT_READY();
  VT_CUDA(cudaMemcpyAsync((void*)(uintptr_t)dst, (const void*)(uintptr_t)src, bytes, cudaMemcpyDeviceToDevice, g.stream));
  return 0;
}

int vt_memset(uint64_t dst, int value, uint64_t bytes) {
  if (!bytes) return 0;
  VT_READY();
  VT_CUDA(cudaMemsetAsync((void*)(uintptr_t)dst, value, bytes, g.stream));
  return 0;
}

int vt_convert(uint64_t dst, int dst_dtype, uint64_t src, int src_dtype, uint64_t n) {
  VT_READY();
  return convert_on_stream((void*)(uintptr_t)dst, dst_dtype, (const void*)(uintptr_t)src, src_dtype, n);
}

int vt_fill_random(uint64_t dst, int dtype, uint64_t n, uint64_t seed, float scale) {
  if (!n) return 0;
  VT_READY();
  return dispatch_float(dtype, "vt_fill_random", [&](auto t) {
    using T = typename decltype(t)::type;
    fill_random_kernel<T><<<blocks_for((int64_t)n, 256, (int64_t)g.sm_count * 32), 256, 0, g.stream>>>((T*)(uintptr_t)dst, n, seed, scale);
    return check_launch("vt_fill_random");
  });
}

}  // extern "C"
