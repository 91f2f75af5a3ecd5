// Prefill / chunked-prefill / mixed-batch attention on tensor cores (FlashAttention-2
// style), bf16 / f16, head_dim 64 or 128.
// NOTE: a block owns BM = 64 rows, each a (query token, query head) pair of one
// sequence and one KV head (the heads of a GQA group side by side, so they share
// every key and value tile), 16 rows per warp. The query tile sits in registers
// as mma A fragments; key/value tiles of 64 keys are gathered from the paged
// cache through the block table into shared memory with 16-byte cp.async copies,
// the next tile in flight while the current one is used. Per tile and warp:
// S = Q K^T (mma.m16n8k16, f32), scale / soft cap / causal and sliding-window
// masks, online softmax in f32 (running max and sum per row), then P is rounded
// to 16 bits in registers and O += P V. Query token j of a sequence with q_len
// queries sits at position seq_len - q_len + j, so chunks after cached tokens
// work like fresh prompts. The (sequence, tile) pairs of a batch are listed by a
// small kernel into the workspace first, heaviest tile of each sequence first, so
// that a batch of many short rows (decode rows in a mixed batch) launches one
// block per real tile instead of a grid sized by the longest sequence; warps whose
// rows are all padding skip the arithmetic.
#include "attention_mma.cuh"

using namespace vt;
using namespace vt::mma;

namespace {

constexpr int kWarps = 4, kThreads = 32 * kWarps, BM = 16 * kWarps, BN = 64;

template <int D>
__host__ __device__ constexpr int smem_bytes() {
  return (BM + 2 * 2 * BN) * (D + 8) * 2;  // Q, then two stages of K and V
}

// map[i] = (sequence, tile) for i < the number of tiles, (-1, 0) up to bound.
__global__ void tile_map_kernel(const int* query_start_loc, int num_seqs, int tokens_per_tile, int bound, int2* map) {
  __shared__ int wsum[32];
  const int tid = threadIdx.x, lane = tid % 32, w = tid / 32, nw = blockDim.x / 32;
  int base = 0;
  for (int s0 = 0; s0 < num_seqs; s0 += blockDim.x) {
    const int s = s0 + tid;
    const int n = s < num_seqs ? max(0, query_start_loc[s + 1] - query_start_loc[s] + tokens_per_tile - 1) / tokens_per_tile : 0;
    int inc = n;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int y = __shfl_up_sync(0xffffffffu, inc, o);
      if (lane >= o) inc += y;
    }
    if (lane == 31) wsum[w] = inc;
    __syncthreads();
    if (w == 0) {
      int v = lane < nw ? wsum[lane] : 0;
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const int y = __shfl_up_sync(0xffffffffu, v, o);
        if (lane >= o) v += y;
      }
      if (lane < nw) wsum[lane] = v;
    }
    __syncthreads();
    const int first = base + (w > 0 ? wsum[w - 1] : 0) + inc - n;
    for (int k = 0; k < n && first + k < bound; k++) map[first + k] = make_int2(s, n - 1 - k);
    base += wsum[nw - 1];
    __syncthreads();  // wsum is rewritten by the next round
  }
  for (int i = base + tid; i < bound; i += blockDim.x) map[i] = make_int2(-1, 0);
}

template <typename T, int D>
__global__ void __launch_bounds__(kThreads, 2) prefill_mma_kernel(AttnParams p, const int2* tile_map, int heads_per_tile, int head_chunks) {
  constexpr int LD = D + 8;  // padded smem row (elements): ldmatrix rows hit distinct banks
  constexpr int NKB = D / 16, NDB = D / 8, NNB = BN / 8, CPR = D / 8;
  extern __shared__ float4 smem4[];
  T* Qs = reinterpret_cast<T*>(smem4);  // [BM][LD]
  T* KVs = Qs + BM * LD;                 // [2 stages][K, V][BN][LD]

  const int hb = p.num_kv_heads * head_chunks;
  const int2 e = tile_map[blockIdx.x / hb];
  if (e.x < 0) return;
  const int seq = e.x, kvh = (blockIdx.x % hb) / head_chunks, hc = (blockIdx.x % hb) % head_chunks;
  const int q0 = p.query_start_loc[seq];
  const int q_len = p.query_start_loc[seq + 1] - q0;
  const int tpt = BM / heads_per_tile;
  const int tok0 = e.y * tpt;
  const int ntok = min(tpt, q_len - tok0);
  const int group = p.num_heads / p.num_kv_heads;
  const int h0 = kvh * group + hc * heads_per_tile;
  const int nh = min(heads_per_tile, group - hc * heads_per_tile);
  const int seq_len = p.seq_lens[seq];
  const int ctx = seq_len - q_len;  // tokens before this step's first query
  const int win = p.sliding_window;
  const int kv_hi = min(seq_len, ctx + tok0 + ntok);  // keys any row of the tile may see
  const int kv_lo = win > 0 ? max(0, ctx + tok0 - win + 1) : 0;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const T* kc = (const T*)p.k_cache;
  const T* vc = (const T*)p.v_cache;
  const int* bt = p.block_tables + (int64_t)seq * p.max_blocks_per_seq;

  for (int i = tid; i < BM * CPR; i += kThreads) {
    const int r = i / CPR, c = i % CPR, tq = r / heads_per_tile, hh = r % heads_per_tile;
    const bool ok = tq < ntok && hh < nh;
    const T* src = (const T*)p.q + (int64_t)(q0 + tok0 + tq) * p.q_stride + (int64_t)(h0 + hh) * D + c * 8;
    cp_async16(smem_u32(Qs + r * LD + c * 8), ok ? src : (const T*)p.q, ok);
  }
  // Tile kv0 .. kv0 + BN - 1 into a stage; keys >= kv_hi are zero-filled.
  auto load_tile = [&](int stage, int kv0) {
    T* Ks = KVs + stage * 2 * BN * LD;
    T* Vs = Ks + BN * LD;
#pragma unroll
    for (int i = tid; i < BN * CPR; i += kThreads) {
      const int j = i / CPR, c = i % CPR, t = kv0 + j;
      const bool ok = t < kv_hi;
      const int64_t off = ok ? (kv_slot(bt, t, p.block_size, p.block_shift) * p.num_kv_heads + kvh) * D + c * 8 : 0;
      cp_async16(smem_u32(Ks + j * LD + c * 8), kc + off, ok);
      cp_async16(smem_u32(Vs + j * LD + c * 8), vc + off, ok);
    }
  };
  const int n_tiles = kv_hi > kv_lo ? (kv_hi - kv_lo + BN - 1) / BN : 0;
  if (n_tiles > 0) load_tile(0, kv_lo);
  cp_async_commit();

  // This lane's rows: a = warp*16 + lane/4, b = a + 8. Padding rows get pos -1 (all masked).
  const int ra = 16 * warp + lane / 4, rb = ra + 8;
  const int tqa = ra / heads_per_tile, tqb = rb / heads_per_tile;
  const bool va = tqa < ntok && ra % heads_per_tile < nh, vb = tqb < ntok && rb % heads_per_tile < nh;
  const int pos_a = va ? ctx + tok0 + tqa : -1, pos_b = vb ? ctx + tok0 + tqb : -1;
  const int lo_a = win > 0 ? pos_a - win + 1 : 0, lo_b = win > 0 ? pos_b - win + 1 : 0;
  // The warp's token range: tiles wholly outside every row's window are skipped.
  const int wt0 = (16 * warp) / heads_per_tile;
  const bool active = wt0 < ntok;
  const int wpos_min = ctx + tok0 + wt0;
  const int wpos_max = ctx + tok0 + min((16 * warp + 15) / heads_per_tile, ntok - 1);

  const float qscale = p.soft_cap > 0.f ? p.scale : p.scale * kLog2e;
  uint32_t qf[NKB][4];
  float o[NDB][4];
#pragma unroll
  for (int n = 0; n < NDB; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.f, l_b = 0.f;

  for (int j = 0; j < n_tiles; j++) {
    cp_async_wait<0>();  // this thread's copies of tile j (and Q) have landed
    __syncthreads();     // everyone's have, and tile j - 1 is no longer read
    if (j + 1 < n_tiles) load_tile((j + 1) & 1, kv_lo + (j + 1) * BN);
    cp_async_commit();
    if (j == 0) {
#pragma unroll
      for (int kk = 0; kk < NKB; kk++) ldsm_x4(qf[kk], smem_u32(Qs + (16 * warp + a_row(lane)) * LD + 16 * kk + a_col(lane)));
    }
    const int kv0 = kv_lo + j * BN;
    if (!active || kv0 > wpos_max || (win > 0 && kv0 + BN - 1 < wpos_min - win + 1)) continue;
    const bool need_mask = kv0 + BN - 1 > wpos_min || kv0 + BN > kv_hi || (win > 0 && kv0 < wpos_max - win + 1);
    const T* Ks = KVs + (j & 1) * 2 * BN * LD;
    const T* Vs = Ks + BN * LD;

    float s[NNB][4];
#pragma unroll
    for (int n = 0; n < NNB; n++) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < NKB; kk++)
#pragma unroll
      for (int pk = 0; pk < BN / 16; pk++) {
        uint32_t b[4];
        ldsm_x4(b, smem_u32(Ks + (16 * pk + k_row(lane)) * LD + 16 * kk + k_col(lane)));
        mma16816<T>(s[2 * pk], qf[kk], b[0], b[1]);
        mma16816<T>(s[2 * pk + 1], qf[kk], b[2], b[3]);
      }
#pragma unroll
    for (int nb = 0; nb < NNB; nb++)
#pragma unroll
      for (int e2 = 0; e2 < 4; e2++) {
        float x = p.soft_cap > 0.f ? attn_score(s[nb][e2] * qscale, p.soft_cap) : s[nb][e2] * qscale;
        if (need_mask) {
          const int t = kv0 + 8 * nb + 2 * (lane % 4) + (e2 & 1);
          const int pr = e2 < 2 ? pos_a : pos_b, lr = e2 < 2 ? lo_a : lo_b;
          x = t <= pr && t >= lr && t < kv_hi ? x : -INFINITY;
        }
        s[nb][e2] = x;
      }
    float corr_a, corr_b;
    online_softmax_tile<NNB>(s, m_a, m_b, l_a, l_b, corr_a, corr_b);
#pragma unroll
    for (int n = 0; n < NDB; n++) o[n][0] *= corr_a, o[n][1] *= corr_a, o[n][2] *= corr_b, o[n][3] *= corr_b;
#pragma unroll
    for (int kk = 0; kk < BN / 16; kk++) {
      const uint32_t pf[4] = {pack2<T>(s[2 * kk][0], s[2 * kk][1]), pack2<T>(s[2 * kk][2], s[2 * kk][3]),
                              pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]), pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int pd = 0; pd < D / 16; pd++) {
        uint32_t b[4];
        ldsm_x4_t(b, smem_u32(Vs + (16 * kk + v_row(lane)) * LD + 16 * pd + v_col(lane)));
        mma16816<T>(o[2 * pd], pf, b[0], b[1]);
        mma16816<T>(o[2 * pd + 1], pf, b[2], b[3]);
      }
    }
  }
  cp_async_wait<0>();

  l_a = quad_sum(l_a);
  l_b = quad_sum(l_b);
  const int c0 = 2 * (lane % 4);
  T* out = (T*)p.out;
  if (va) {
    const float inv = l_a > 0.f ? 1.f / l_a : 0.f;
    T* row = out + (int64_t)(q0 + tok0 + tqa) * p.num_heads * D + (int64_t)(h0 + ra % heads_per_tile) * D + c0;
#pragma unroll
    for (int nb = 0; nb < NDB; nb++) *reinterpret_cast<uint32_t*>(row + 8 * nb) = pack2<T>(o[nb][0] * inv, o[nb][1] * inv);
  }
  if (vb) {
    const float inv = l_b > 0.f ? 1.f / l_b : 0.f;
    T* row = out + (int64_t)(q0 + tok0 + tqb) * p.num_heads * D + (int64_t)(h0 + rb % heads_per_tile) * D + c0;
#pragma unroll
    for (int nb = 0; nb < NDB; nb++) *reinterpret_cast<uint32_t*>(row + 8 * nb) = pack2<T>(o[nb][2] * inv, o[nb][3] * inv);
  }
}

template <typename T, int D>
int run_prefill_mma(const AttnParams& p) {
  constexpr int bytes = smem_bytes<D>();
  static bool raised = false;  // per instantiation
  if (!raised) {
    if (bytes > g.smem_optin)
      return set_error("vt_attention: prefill needs %d bytes of shared memory, the device allows %d", bytes, g.smem_optin);
    VT_CUDA(cudaFuncSetAttribute(prefill_mma_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    raised = true;
  }
  const int group = p.num_heads / p.num_kv_heads;
  const int heads_per_tile = group < BM ? group : BM;
  const int head_chunks = (group + heads_per_tile - 1) / heads_per_tile;
  const int tpt = BM / heads_per_tile;
  // Every sequence's tiles, rounded up, fit in num_tokens / tpt + num_seqs.
  const int64_t bound = ((int64_t)p.num_tokens + tpt - 1) / tpt + p.num_seqs;
  const int64_t blocks = bound * p.num_kv_heads * head_chunks;
  if (bound * (int64_t)sizeof(int2) > (int64_t)g.attn_workspace_bytes || blocks > 2147483647LL)
    return set_error("vt_attention: prefill batch too large (%d tokens, %d sequences)", p.num_tokens, p.num_seqs);
  int2* map = reinterpret_cast<int2*>(g.attn_workspace);
  tile_map_kernel<<<1, 1024, 0, g.stream>>>(p.query_start_loc, p.num_seqs, tpt, (int)bound, map);
  if (check_launch("vt_attention (prefill tile map)")) return 1;
  prefill_mma_kernel<T, D><<<(unsigned)blocks, kThreads, bytes, g.stream>>>(p, map, heads_per_tile, head_chunks);
  return check_launch("vt_attention (prefill, tensor cores)");
}

}  // namespace

namespace vt {

int launch_prefill_mma(const AttnParams& p, int act) {
  if (act == VT_BF16) return p.head_dim == 64 ? run_prefill_mma<__nv_bfloat16, 64>(p) : run_prefill_mma<__nv_bfloat16, 128>(p);
  if (act == VT_F16) return p.head_dim == 64 ? run_prefill_mma<__half, 64>(p) : run_prefill_mma<__half, 128>(p);
  return set_error("vt_attention: the tensor-core prefill kernel takes bf16 or f16 (got dtype %d)", act);
}

}  // namespace vt
