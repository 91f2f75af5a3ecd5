// Prefill / chunked-prefill / mixed-batch attention over the paged KV cache.
// NOTE: flash-style tiling with an online softmax. A block owns up to 64 "rows",
// each a (query token, query head) pair of one sequence and one KV head, so every
// head of a GQA group shares the key/value tiles it loads. It walks the keys that
// any of its rows may see in tiles of 32 (S = Q K^T in f32 from shared memory,
// causal / sliding-window masks per row, running max and sum per row, O += P V),
// and writes O / l. Query token j of a sequence with q_len queries sits at
// position seq_len - q_len + j, so queries after cached tokens (prefix hits,
// later chunks) work the same way as a fresh prompt.
// SIMT arithmetic for now (correct first); tensor cores are the next step.
#include "attention.cuh"

using namespace vt;

namespace {

constexpr int kThreads = 128, BM = 64, BN = 32;

template <int DMAX>
constexpr int smem_bytes() {
  return (BM + 2 * BN) * (DMAX + 4) * 4 + BM * (BN + 1) * 4;
}

// Thread layout: rg = tid / 8 owns rows rg*4 .. rg*4+3; kg = tid % 8 owns keys kg + 8j
// (j < 4) of each tile and output dims kg*4 + 32c .. +3 (c < DMAX/32).
template <typename T, int DMAX>
__global__ void __launch_bounds__(kThreads) prefill_kernel(AttnParams p, int heads_per_tile, int head_chunks) {
  constexpr int LD = DMAX + 4;  // padded row of Qs/Ks/Vs (floats)
  constexpr int NC = DMAX / 32;
  extern __shared__ float4 smem4[];
  float* Qs = reinterpret_cast<float*>(smem4);  // [BM][LD], pre-scaled queries
  float* Ks = Qs + BM * LD;                      // [BN][LD]
  float* Vs = Ks + BN * LD;                      // [BN][LD]
  float* Ps = Vs + BN * LD;                      // [BM][BN + 1]

  const int seq = blockIdx.z;
  const int q0 = p.query_start_loc[seq];
  const int q_len = p.query_start_loc[seq + 1] - q0;
  const int tokens_per_tile = BM / heads_per_tile;
  const int tok0 = blockIdx.x * tokens_per_tile;
  if (tok0 >= q_len) return;
  const int ntok = min(tokens_per_tile, q_len - tok0);
  const int kvh = blockIdx.y / head_chunks, hc = blockIdx.y % head_chunks;
  const int group = p.num_heads / p.num_kv_heads;
  const int h0 = kvh * group + hc * heads_per_tile;
  const int nh = min(heads_per_tile, group - hc * heads_per_tile);
  const int seq_len = p.seq_lens[seq];
  const int ctx = seq_len - q_len;  // tokens before this step's first query
  const int D = p.head_dim;
  const float qscale = p.soft_cap > 0.f ? p.scale : p.scale * kLog2e;
  const T* kc = (const T*)p.k_cache;
  const T* vc = (const T*)p.v_cache;
  const int* bt = p.block_tables + (int64_t)seq * p.max_blocks_per_seq;

  // Load the query rows (row r = token r / heads_per_tile, head r % heads_per_tile).
  for (int i = threadIdx.x; i < BM * (DMAX / 8); i += kThreads) {
    const int r = i / (DMAX / 8), d0 = (i % (DMAX / 8)) * 8;
    const int tq = r / heads_per_tile, hh = r % heads_per_tile;
    float f[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    if (tq < ntok && hh < nh && d0 < D) {
      load8((const T*)p.q + (int64_t)(q0 + tok0 + tq) * p.q_stride + (int64_t)(h0 + hh) * D + d0, f);
#pragma unroll
      for (int k = 0; k < 8; k++) f[k] *= qscale;
    }
    reinterpret_cast<float4*>(Qs + r * LD + d0)[0] = make_float4(f[0], f[1], f[2], f[3]);
    reinterpret_cast<float4*>(Qs + r * LD + d0)[1] = make_float4(f[4], f[5], f[6], f[7]);
  }

  const int rg = threadIdx.x / 8, kg = threadIdx.x % 8;
  int pos[4], lo_row[4];
  bool row_ok[4];
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const int r = rg * 4 + i, tq = r / heads_per_tile;
    row_ok[i] = tq < ntok && (r % heads_per_tile) < nh;
    pos[i] = ctx + tok0 + tq;
    lo_row[i] = p.sliding_window > 0 ? pos[i] - p.sliding_window + 1 : 0;
  }
  // Keys any row of the tile may see.
  const int kv_hi = min(seq_len, ctx + tok0 + ntok);
  const int kv_lo = p.sliding_window > 0 ? max(0, ctx + tok0 - p.sliding_window + 1) : 0;

  float o[4][NC][4];
  float m[4], l[4];
#pragma unroll
  for (int i = 0; i < 4; i++) {
    m[i] = -INFINITY;
    l[i] = 0.f;
#pragma unroll
    for (int c = 0; c < NC; c++)
#pragma unroll
      for (int k = 0; k < 4; k++) o[i][c][k] = 0.f;
  }

  for (int kv0 = kv_lo; kv0 < kv_hi; kv0 += BN) {
    __syncthreads();  // the previous tile's Ks/Vs/Ps are no longer read
    for (int i = threadIdx.x; i < BN * (DMAX / 8); i += kThreads) {
      const int j = i / (DMAX / 8), d0 = (i % (DMAX / 8)) * 8;
      const int t = kv0 + j;
      float kf[8], vf[8];
      if (t < kv_hi && d0 < D) {
        const int64_t blk = bt[t / p.block_size];
        const int64_t base = ((blk * p.block_size + t % p.block_size) * p.num_kv_heads + kvh) * D + d0;
        load8(kc + base, kf);
        load8(vc + base, vf);
      } else {
#pragma unroll
        for (int k = 0; k < 8; k++) kf[k] = vf[k] = 0.f;
      }
      float4* kd = reinterpret_cast<float4*>(Ks + j * LD + d0);
      float4* vd = reinterpret_cast<float4*>(Vs + j * LD + d0);
      kd[0] = make_float4(kf[0], kf[1], kf[2], kf[3]);
      kd[1] = make_float4(kf[4], kf[5], kf[6], kf[7]);
      vd[0] = make_float4(vf[0], vf[1], vf[2], vf[3]);
      vd[1] = make_float4(vf[4], vf[5], vf[6], vf[7]);
    }
    __syncthreads();

    float s[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
      for (int j = 0; j < 4; j++) s[i][j] = 0.f;
#pragma unroll 4
    for (int d = 0; d < DMAX; d += 4) {
      float4 qv[4], kv[4];
#pragma unroll
      for (int i = 0; i < 4; i++) qv[i] = *reinterpret_cast<const float4*>(Qs + (rg * 4 + i) * LD + d);
#pragma unroll
      for (int j = 0; j < 4; j++) kv[j] = *reinterpret_cast<const float4*>(Ks + (kg + 8 * j) * LD + d);
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) s[i][j] += qv[i].x * kv[j].x + qv[i].y * kv[j].y + qv[i].z * kv[j].z + qv[i].w * kv[j].w;
    }

#pragma unroll
    for (int i = 0; i < 4; i++) {
      float mx = -INFINITY;
#pragma unroll
      for (int j = 0; j < 4; j++) {
        const int t = kv0 + kg + 8 * j;
        const bool ok = row_ok[i] && t <= pos[i] && t >= lo_row[i] && t < kv_hi;
        s[i][j] = ok ? (p.soft_cap > 0.f ? attn_score(s[i][j], p.soft_cap) : s[i][j]) : -INFINITY;
        mx = fmaxf(mx, s[i][j]);
      }
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 4));
      const float m_new = fmaxf(m[i], mx);
      const float corr = m_new == -INFINITY ? 1.f : exp2f(m[i] - m_new);
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < 4; j++) {
        const float e = m_new == -INFINITY ? 0.f : exp2f(s[i][j] - m_new);
        sum += e;
        Ps[(rg * 4 + i) * (BN + 1) + kg + 8 * j] = e;
      }
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      sum += __shfl_xor_sync(0xffffffffu, sum, 4);
      l[i] = l[i] * corr + sum;
      m[i] = m_new;
#pragma unroll
      for (int c = 0; c < NC; c++)
#pragma unroll
        for (int k = 0; k < 4; k++) o[i][c][k] *= corr;
    }
    __syncthreads();

#pragma unroll 4
    for (int j = 0; j < BN; j++) {
      float pv[4];
#pragma unroll
      for (int i = 0; i < 4; i++) pv[i] = Ps[(rg * 4 + i) * (BN + 1) + j];
#pragma unroll
      for (int c = 0; c < NC; c++) {
        const float4 v = *reinterpret_cast<const float4*>(Vs + j * LD + kg * 4 + 32 * c);
#pragma unroll
        for (int i = 0; i < 4; i++) {
          o[i][c][0] += pv[i] * v.x;
          o[i][c][1] += pv[i] * v.y;
          o[i][c][2] += pv[i] * v.z;
          o[i][c][3] += pv[i] * v.w;
        }
      }
    }
  }

  T* out = (T*)p.out;
#pragma unroll
  for (int i = 0; i < 4; i++) {
    if (!row_ok[i]) continue;
    const int r = rg * 4 + i, tq = r / heads_per_tile, hh = r % heads_per_tile;
    const float inv = l[i] > 0.f ? 1.f / l[i] : 0.f;
    T* orow = out + (int64_t)(q0 + tok0 + tq) * p.num_heads * D + (int64_t)(h0 + hh) * D;
#pragma unroll
    for (int c = 0; c < NC; c++)
#pragma unroll
      for (int k = 0; k < 4; k++) {
        const int d = kg * 4 + 32 * c + k;
        if (d < D) orow[d] = from_f32<T>(o[i][c][k] * inv);
      }
  }
}

template <typename T, int DMAX>
int run_prefill(const AttnParams& p) {
  const int group = p.num_heads / p.num_kv_heads;
  const int heads_per_tile = group < BM ? group : BM;
  const int head_chunks = (group + heads_per_tile - 1) / heads_per_tile;
  const int tokens_per_tile = BM / heads_per_tile;
  const int64_t tiles = (p.max_query_len + tokens_per_tile - 1) / tokens_per_tile;
  constexpr int bytes = smem_bytes<DMAX>();
  if (bytes > g.smem_optin)
    return set_error("vt_attention: head_dim %d needs %d bytes of shared memory, the device allows %d", p.head_dim, bytes, g.smem_optin);
  static bool raised = false;  // per instantiation
  if (!raised) {
    VT_CUDA(cudaFuncSetAttribute(prefill_kernel<T, DMAX>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    raised = true;
  }
  if (tiles > 2147483647LL || (int64_t)p.num_kv_heads * head_chunks > 65535 || p.num_seqs > 65535)
    return set_error("vt_attention: prefill grid too large (%lld tiles, %d sequences)", (long long)tiles, p.num_seqs);
  dim3 grid((unsigned)tiles, (unsigned)(p.num_kv_heads * head_chunks), (unsigned)p.num_seqs);
  prefill_kernel<T, DMAX><<<grid, kThreads, bytes, g.stream>>>(p, heads_per_tile, head_chunks);
  return check_launch("vt_attention (prefill)");
}

}  // namespace

namespace vt {

int launch_prefill(const AttnParams& p, int act) {
  return dispatch_float(act, "vt_attention", [&](auto a) {
    using T = typename decltype(a)::type;
    if (p.head_dim <= 32) return run_prefill<T, 32>(p);
    if (p.head_dim <= 64) return run_prefill<T, 64>(p);
    if (p.head_dim <= 128) return run_prefill<T, 128>(p);
    return run_prefill<T, 256>(p);
  });
}

}  // namespace vt
