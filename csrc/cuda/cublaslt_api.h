// The slice of cuBLASLt that vt_linear uses, declared here and loaded with
// dlopen at vt_init. NOTE: the CUDA toolkit on the build machines (and CI) has
// nvcc and cudart but no cuBLAS headers or libraries, so the library must build
// without them; the values below are cuBLASLt's stable ABI (unchanged from
// CUDA 11 to 13). At run time libcublasLt.so.{13,12} is found next to cudart, in
// $CUDA_HOME, /usr/local/cuda, or through the loader's path
// (VLLM_TS_CUBLASLT=/path/libcublasLt.so overrides).
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <cuda_runtime.h>
#include <library_types.h>

namespace vt {

typedef int lt_status;  // cublasStatus_t, 0 = success
typedef void* lt_handle;
typedef void* lt_desc;
typedef void* lt_layout;
typedef void* lt_pref;
struct lt_algo { uint64_t data[8]; };
struct lt_heuristic {
  lt_algo algo;
  size_t workspace_size;
  lt_status state;
  float waves_count;
  int reserved[4];
};

enum : int {
  LT_COMPUTE_32F = 68,  // CUBLAS_COMPUTE_32F
  LT_OP_N = 0,
  LT_OP_T = 1,
  LT_DESC_TRANSA = 3,
  LT_DESC_TRANSB = 4,
  LT_DESC_EPILOGUE = 7,
  LT_DESC_BIAS_POINTER = 8,
  LT_EPILOGUE_DEFAULT = 1,
  LT_EPILOGUE_BIAS = 4,
  LT_PREF_MAX_WORKSPACE_BYTES = 1,
  LT_PREF_MIN_ALIGNMENT_A = 5,
  LT_PREF_MIN_ALIGNMENT_B = 6,
  LT_PREF_MIN_ALIGNMENT_C = 7,
  LT_PREF_MIN_ALIGNMENT_D = 8,
};

struct LtApi {
  bool ok = false;
  char path[512] = {0};
  lt_handle handle = nullptr;
  lt_status (*create)(lt_handle*) = nullptr;
  lt_status (*destroy)(lt_handle) = nullptr;
  const char* (*status_string)(lt_status) = nullptr;
  lt_status (*desc_create)(lt_desc*, int compute, cudaDataType scale) = nullptr;
  lt_status (*desc_destroy)(lt_desc) = nullptr;
  lt_status (*desc_set)(lt_desc, int attr, const void* buf, size_t bytes) = nullptr;
  lt_status (*layout_create)(lt_layout*, cudaDataType, uint64_t rows, uint64_t cols, int64_t ld) = nullptr;
  lt_status (*layout_destroy)(lt_layout) = nullptr;
  lt_status (*pref_create)(lt_pref*) = nullptr;
  lt_status (*pref_destroy)(lt_pref) = nullptr;
  lt_status (*pref_set)(lt_pref, int attr, const void* buf, size_t bytes) = nullptr;
  lt_status (*heuristic)(lt_handle, lt_desc, lt_layout a, lt_layout b, lt_layout c, lt_layout d, lt_pref,
                         int requested, lt_heuristic* results, int* returned) = nullptr;
  lt_status (*matmul)(lt_handle, lt_desc, const void* alpha, const void* a, lt_layout, const void* b, lt_layout,
                      const void* beta, const void* c, lt_layout, void* d, lt_layout, const lt_algo*,
                      void* workspace, size_t workspace_bytes, cudaStream_t) = nullptr;
};

// Loads the library and its functions into api (api->ok tells). Returns a
// message on failure, nullptr on success.
const char* lt_load(LtApi* api);

}  // namespace vt
