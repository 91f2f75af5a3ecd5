// NCCL behind the native seam: libnccl is dlopened at run time (no NCCL headers or
// link-time dependency; src/distributed/nccl.ts finds the file: VLLM_TS_NCCL_PATH,
// vLLM's VLLM_NCCL_SO_PATH, the Python nvidia-nccl-cu* wheel, the CUDA toolkit, the
// dynamic loader's search). One communicator per process, as one device per
// process (runtime.cu): rank r of a tensor-parallel group is its own process. The
// collectives are enqueued on the library's stream, so a decode step's CUDA graph
// captures them with the kernels around them.
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mutex>

#include "common.cuh"

using namespace vt;

namespace {

// The parts of nccl.h this file needs (ABI-stable since NCCL 2.0).
typedef struct ncclComm* ncclComm_t;
typedef struct {
  char internal[128];
} ncclUniqueId;
typedef int ncclResult_t;  // 0: ncclSuccess
enum { ncclInt32 = 2, ncclFloat16 = 6, ncclFloat32 = 7, ncclBfloat16 = 9 };
enum { ncclSum = 0 };

struct NcclApi {
  void* handle = nullptr;
  char path[512] = {0};
  ncclResult_t (*get_version)(int*) = nullptr;
  ncclResult_t (*get_unique_id)(ncclUniqueId*) = nullptr;
  ncclResult_t (*comm_init_rank)(ncclComm_t*, int, ncclUniqueId, int) = nullptr;
  ncclResult_t (*comm_destroy)(ncclComm_t) = nullptr;
  ncclResult_t (*all_reduce)(const void*, void*, size_t, int, int, ncclComm_t, cudaStream_t) = nullptr;
  ncclResult_t (*all_gather)(const void*, void*, size_t, int, ncclComm_t, cudaStream_t) = nullptr;
  const char* (*error_string)(ncclResult_t) = nullptr;
};

NcclApi nccl;
ncclComm_t comm = nullptr;
int comm_world = 0;
std::mutex nccl_mutex;

const char* nccl_error(ncclResult_t r) { return nccl.error_string ? nccl.error_string(r) : "unknown NCCL error"; }

int need_loaded(const char* op) {
  if (!nccl.handle) return set_error("%s: NCCL is not loaded (vt_nccl_load first)", op);
  return 0;
}

int need_comm(const char* op) {
  if (!comm) return set_error("%s: no NCCL communicator (vt_nccl_init first)", op);
  return 0;
}

int nccl_dtype(int dtype, int* out) {
  switch (dtype) {
    case VT_F32: *out = ncclFloat32; return 0;
    case VT_F16: *out = ncclFloat16; return 0;
    case VT_BF16: *out = ncclBfloat16; return 0;
    case VT_I32: *out = ncclInt32; return 0;
    default: return set_error("NCCL collectives take f32, f16, bf16 or int32, not dtype %d", dtype);
  }
}

#define VT_NCCL(op, call)                                                   \
  do {                                                                      \
    ncclResult_t vt_r_ = (call);                                            \
    if (vt_r_ != 0) return set_error("%s: %s (NCCL error %d)", op, nccl_error(vt_r_), vt_r_); \
  } while (0)

}  // namespace

extern "C" {

int vt_nccl_load(const char* path) {
  std::lock_guard<std::mutex> lock(nccl_mutex);
  if (nccl.handle) return 0;
  if (!path || !*path) return set_error("vt_nccl_load: no path given");
  // NVLink multicast (NVLS) off, whatever the environment says, before NCCL reads
  // it: on a shared host a program using it can put every GPU out of service
  // (src/distributed/nccl.ts sets it too, and the rank processes start with it).
  setenv("NCCL_NVLS_ENABLE", "0", 1);
  void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) return set_error("vt_nccl_load: cannot load %s: %s", path, dlerror());
  NcclApi api;
  auto sym = [&](const char* name) { return dlsym(h, name); };
  *(void**)&api.get_version = sym("ncclGetVersion");
  *(void**)&api.get_unique_id = sym("ncclGetUniqueId");
  *(void**)&api.comm_init_rank = sym("ncclCommInitRank");
  *(void**)&api.comm_destroy = sym("ncclCommDestroy");
  *(void**)&api.all_reduce = sym("ncclAllReduce");
  *(void**)&api.all_gather = sym("ncclAllGather");
  *(void**)&api.error_string = sym("ncclGetErrorString");
  if (!api.get_version || !api.get_unique_id || !api.comm_init_rank || !api.comm_destroy || !api.all_reduce || !api.all_gather) {
    dlclose(h);
    return set_error("vt_nccl_load: %s is not an NCCL library (ncclCommInitRank / ncclAllReduce / ncclAllGather missing)", path);
  }
  api.handle = h;
  snprintf(api.path, sizeof api.path, "%s", path);
  nccl = api;
  return 0;
}

int vt_nccl_version(void) {
  int v = 0;
  if (!nccl.handle || nccl.get_version(&v) != 0) return 0;
  return v;
}

int vt_nccl_unique_id(uint8_t* out) {
  if (need_loaded("vt_nccl_unique_id")) return 1;
  ncclUniqueId id;
  VT_NCCL("ncclGetUniqueId", nccl.get_unique_id(&id));
  memcpy(out, id.internal, sizeof id.internal);
  return 0;
}

int vt_nccl_init(int world_size, int rank, const uint8_t* unique_id) {
  std::lock_guard<std::mutex> lock(nccl_mutex);
  if (need_loaded("vt_nccl_init")) return 1;
  if (comm) return set_error("vt_nccl_init: this process already joined a communicator of %d ranks", comm_world);
  if (world_size < 1 || rank < 0 || rank >= world_size) return set_error("vt_nccl_init: rank %d of %d", rank, world_size);
  VT_READY();
  ncclUniqueId id;
  memcpy(id.internal, unique_id, sizeof id.internal);
  VT_NCCL("ncclCommInitRank", nccl.comm_init_rank(&comm, world_size, id, rank));
  comm_world = world_size;
  return 0;
}

int vt_all_reduce(uint64_t buf, int64_t n, int dtype) {
  if (need_comm("vt_all_reduce")) return 1;
  if (n <= 0) return 0;
  int dt = 0;
  if (nccl_dtype(dtype, &dt)) return 1;
  VT_READY();
  void* p = (void*)(uintptr_t)buf;
  VT_NCCL("ncclAllReduce", nccl.all_reduce(p, p, (size_t)n, dt, ncclSum, comm, g.stream));
  return 0;
}

int vt_all_gather(uint64_t out, uint64_t in, int64_t n, int dtype) {
  if (need_comm("vt_all_gather")) return 1;
  if (n <= 0) return 0;
  int dt = 0;
  if (nccl_dtype(dtype, &dt)) return 1;
  VT_READY();
  VT_NCCL("ncclAllGather", nccl.all_gather((const void*)(uintptr_t)in, (void*)(uintptr_t)out, (size_t)n, dt, comm, g.stream));
  return 0;
}

int vt_nccl_destroy(void) {
  std::lock_guard<std::mutex> lock(nccl_mutex);
  if (!comm) return 0;
  ncclComm_t c = comm;
  comm = nullptr;
  comm_world = 0;
  VT_NCCL("ncclCommDestroy", nccl.comm_destroy(c));
  return 0;
}

}  // extern "C"
