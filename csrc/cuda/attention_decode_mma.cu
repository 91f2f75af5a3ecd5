// Decode attention (one query token per sequence) on tensor cores, bf16 / f16,
// head_dim 64 or 128.
// NOTE: one block per (sequence, KV head, chunk of up to 16 query heads of its
// GQA group, key partition), as in the SIMT split-K kernel (attention_decode.cu),
// whose partition plan and merge kernel it shares. The query heads are the 16
// rows of an mma tile, so every head of the group reuses each key and value
// loaded once. The partition's keys stream through shared memory in tiles of 64
// (gathered through the block table with 16-byte cp.async copies, kStages tiles
// in flight); warp w takes keys 16w..16w+15 of every tile and keeps its own
// online softmax (S = Q K^T, P V with mma.m16n8k16, f32 accumulators); the four
// warps' (max, sum, output) are merged in shared memory at the end.
#include "attention_mma.cuh"

using namespace vt;
using namespace vt::mma;

namespace {

constexpr int kWarps = 4, kThreads = 32 * kWarps, BN = 16 * kWarps, RM = 16, kStages = 3;

template <int D>
__host__ __device__ constexpr int smem_bytes() {
  return (RM + kStages * 2 * BN) * (D + 8) * 2;
}

template <typename T, int D>
__global__ void __launch_bounds__(kThreads) decode_mma_kernel(AttnParams p, int chunks, int num_splits, int partition, float* part_acc,
                                                              float* part_ml) {
  constexpr int LD = D + 8;  // padded smem row (elements): ldmatrix rows hit distinct banks
  constexpr int NKB = D / 16, NDB = D / 8, CPR = D / 8;
  static_assert(kWarps * RM * D * 4 + kWarps * RM * 2 * 4 <= smem_bytes<D>(), "merge buffer must fit in the tiles' memory");
  extern __shared__ float4 smem4[];
  T* Qs = reinterpret_cast<T*>(smem4);  // [RM][LD]
  T* KVs = Qs + RM * LD;                 // [kStages][K, V][BN][LD]

  const int seq = blockIdx.z, split = blockIdx.y;
  const int kvh = blockIdx.x / chunks, chunk = blockIdx.x % chunks;
  const int group = p.num_heads / p.num_kv_heads;
  const int h0 = kvh * group + chunk * RM;
  const int ng = min(RM, group - chunk * RM);
  const int q0 = p.query_start_loc[seq];
  if (p.query_start_loc[seq + 1] - q0 <= 0) return;  // nothing scheduled for this sequence
  const int2 range = decode_key_range(p, seq, split, partition);
  const int start = range.x, end = range.y;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;

  if (start >= end) {  // an empty partition (the grid covers max_seq_len): merges as nothing
    for (int idx = tid; idx < ng * D; idx += kThreads)
      store_decode_result<T>(p, seq, q0, h0 + idx / D, idx % D, split, num_splits, 0.f, -INFINITY, 0.f, part_acc, part_ml);
    return;
  }

  const T* kc = (const T*)p.k_cache;
  const T* vc = (const T*)p.v_cache;
  const int* bt = p.block_tables + (int64_t)seq * p.max_blocks_per_seq;
  const T* qrow = (const T*)p.q + (int64_t)q0 * p.q_stride + (int64_t)h0 * D;
  for (int i = tid; i < RM * CPR; i += kThreads) {
    const int r = i / CPR, c = i % CPR;
    cp_async16(smem_u32(Qs + r * LD + c * 8), r < ng ? qrow + (int64_t)r * D + c * 8 : qrow, r < ng);
  }
  // Tile kv0 .. kv0 + BN - 1 into a stage; keys >= end are zero-filled.
  auto load_tile = [&](int stage, int kv0) {
    T* Ks = KVs + stage * 2 * BN * LD;
    T* Vs = Ks + BN * LD;
#pragma unroll
    for (int i = tid; i < BN * CPR; i += kThreads) {
      const int j = i / CPR, c = i % CPR, t = kv0 + j;
      const bool ok = t < end;
      const int64_t off = ok ? (kv_slot(bt, t, p.block_size, p.block_shift) * p.num_kv_heads + kvh) * D + c * 8 : 0;
      cp_async16(smem_u32(Ks + j * LD + c * 8), kc + off, ok);
      cp_async16(smem_u32(Vs + j * LD + c * 8), vc + off, ok);
    }
  };
  const int n_tiles = (end - start + BN - 1) / BN;
#pragma unroll
  for (int s = 0; s < kStages - 1; s++) {
    if (s < n_tiles) load_tile(s, start + s * BN);
    cp_async_commit();
  }

  const float qscale = p.soft_cap > 0.f ? p.scale : p.scale * kLog2e;
  uint32_t qf[NKB][4];
  float o[NDB][4];
#pragma unroll
  for (int n = 0; n < NDB; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.f, l_b = 0.f;  // rows lane/4 and lane/4 + 8

  for (int j = 0; j < n_tiles; j++) {
    cp_async_wait<kStages - 2>();  // this thread's copies of tile j have landed
    __syncthreads();               // everyone's have, and tile j - 1 is no longer read
    {
      const int nj = j + kStages - 1;
      if (nj < n_tiles) load_tile(nj % kStages, start + nj * BN);
      cp_async_commit();
    }
    if (j == 0) {
#pragma unroll
      for (int kk = 0; kk < NKB; kk++) ldsm_x4(qf[kk], smem_u32(Qs + a_row(lane) * LD + 16 * kk + a_col(lane)));
    }
    const int kw = start + j * BN + 16 * warp;  // this warp's first key
    if (kw >= end) continue;
    const T* Ks = KVs + (j % kStages) * 2 * BN * LD + 16 * warp * LD;
    const T* Vs = Ks + BN * LD;

    float s[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
#pragma unroll
    for (int kk = 0; kk < NKB; kk++) {
      uint32_t b[4];
      ldsm_x4(b, smem_u32(Ks + k_row(lane) * LD + 16 * kk + k_col(lane)));
      mma16816<T>(s[0], qf[kk], b[0], b[1]);
      mma16816<T>(s[1], qf[kk], b[2], b[3]);
    }
#pragma unroll
    for (int nb = 0; nb < 2; nb++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int t = kw + 8 * nb + 2 * (lane % 4) + (e & 1);
        const float x = p.soft_cap > 0.f ? attn_score(s[nb][e] * qscale, p.soft_cap) : s[nb][e] * qscale;
        s[nb][e] = t < end ? x : -INFINITY;
      }
    float corr_a, corr_b;
    online_softmax_tile<2>(s, m_a, m_b, l_a, l_b, corr_a, corr_b);
    const uint32_t pf[4] = {pack2<T>(s[0][0], s[0][1]), pack2<T>(s[0][2], s[0][3]), pack2<T>(s[1][0], s[1][1]),
                            pack2<T>(s[1][2], s[1][3])};
#pragma unroll
    for (int pd = 0; pd < D / 16; pd++) {
      uint32_t b[4];
      ldsm_x4_t(b, smem_u32(Vs + v_row(lane) * LD + 16 * pd + v_col(lane)));
      o[2 * pd][0] *= corr_a, o[2 * pd][1] *= corr_a, o[2 * pd][2] *= corr_b, o[2 * pd][3] *= corr_b;
      o[2 * pd + 1][0] *= corr_a, o[2 * pd + 1][1] *= corr_a, o[2 * pd + 1][2] *= corr_b, o[2 * pd + 1][3] *= corr_b;
      mma16816<T>(o[2 * pd], pf, b[0], b[1]);
      mma16816<T>(o[2 * pd + 1], pf, b[2], b[3]);
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // the tiles' memory becomes the merge buffer

  l_a = quad_sum(l_a);
  l_b = quad_sum(l_b);
  float* sm_o = reinterpret_cast<float*>(smem4);  // [kWarps][RM][D]
  float* sm_ml = sm_o + kWarps * RM * D;          // [kWarps][RM][2]
  const int ra = lane / 4, rb = ra + 8, c0 = 2 * (lane % 4);
#pragma unroll
  for (int nb = 0; nb < NDB; nb++) {
    *reinterpret_cast<float2*>(sm_o + (warp * RM + ra) * D + 8 * nb + c0) = make_float2(o[nb][0], o[nb][1]);
    *reinterpret_cast<float2*>(sm_o + (warp * RM + rb) * D + 8 * nb + c0) = make_float2(o[nb][2], o[nb][3]);
  }
  if (lane % 4 == 0) {
    sm_ml[(warp * RM + ra) * 2] = m_a, sm_ml[(warp * RM + ra) * 2 + 1] = l_a;
    sm_ml[(warp * RM + rb) * 2] = m_b, sm_ml[(warp * RM + rb) * 2 + 1] = l_b;
  }
  __syncthreads();
  for (int idx = tid; idx < ng * D; idx += kThreads) {
    const int r = idx / D, d = idx % D;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; w++) M = fmaxf(M, sm_ml[(w * RM + r) * 2]);
    float L = 0.f, A = 0.f;
    if (M != -INFINITY) {
#pragma unroll
      for (int w = 0; w < kWarps; w++) {
        const float wt = exp2f(sm_ml[(w * RM + r) * 2] - M);
        L += sm_ml[(w * RM + r) * 2 + 1] * wt;
        A += sm_o[(w * RM + r) * D + d] * wt;
      }
    }
    store_decode_result<T>(p, seq, q0, h0 + r, d, split, num_splits, A, M, L, part_acc, part_ml);
  }
}

template <typename T, int D>
int run_decode_mma(const AttnParams& p, int act) {
  constexpr int bytes = smem_bytes<D>();
  static int resident = 0;  // blocks of this instantiation that fit on one SM
  if (resident == 0) {
    if (bytes > g.smem_optin)
      return set_error("vt_attention: decode needs %d bytes of shared memory, the device allows %d", bytes, g.smem_optin);
    VT_CUDA(cudaFuncSetAttribute(decode_mma_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    int n = 0;
    VT_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, decode_mma_kernel<T, D>, kThreads, bytes));
    resident = n > 0 ? n : 1;
  }
  DecodeLaunch l;
  // One wave of resident blocks; partitions of whole tiles.
  if (plan_decode_launch(p, RM, (int64_t)resident * g.sm_count, BN, BN, l)) return 1;
  const DecodeSplit& s = l.split;
  decode_mma_kernel<T, D><<<l.grid, kThreads, bytes, g.stream>>>(p, l.chunks, s.splits, s.partition, s.part_acc, s.part_ml);
  if (check_launch("vt_attention (decode, tensor cores)")) return 1;
  return launch_decode_reduce(p, s, act);
}

}  // namespace

namespace vt {

int launch_decode_mma(const AttnParams& p, int act) {
  if (act == VT_BF16) return p.head_dim == 64 ? run_decode_mma<__nv_bfloat16, 64>(p, act) : run_decode_mma<__nv_bfloat16, 128>(p, act);
  if (act == VT_F16) return p.head_dim == 64 ? run_decode_mma<__half, 64>(p, act) : run_decode_mma<__half, 128>(p, act);
  return set_error("vt_attention: the tensor-core decode kernel takes bf16 or f16 (got dtype %d)", act);
}

}  // namespace vt
