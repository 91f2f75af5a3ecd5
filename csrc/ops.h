// vllm-ts native ABI: one C signature per op, implemented twice
// (csrc/cpu: C++ with SIMD and a thread pool; csrc/cuda: CUDA C++).
// src/native/ is the only TypeScript module that loads these libraries.
//
// Conventions
// - Device memory is addressed by plain 64-bit addresses (uint64_t): on the CPU
//   library they are host pointers, on the CUDA library device pointers. A null
//   address (0) means "absent" for optional arguments.
// - Every op returns 0 on success and non-zero on failure; vt_last_error() then
//   describes the failure (thread-local on the CPU library).
// - `act` is the activation dtype (CPU: VT_F32 only; CUDA: VT_BF16 / VT_F16, and
//   VT_F32 where noted). `wdt` is a weight's dtype (VT_F32 / VT_F16 / VT_BF16).
//   Arithmetic always accumulates in f32.
// - Integer index tensors (ids, positions, slot mappings, block tables, query
//   start offsets, sequence lengths) are int32.
// - "stride" arguments are the distance in elements between consecutive token
//   rows, so that q, k and v can be read in place from a fused qkv projection.
// - The KV cache of one layer is two tensors, each
//   [num_blocks, block_size, num_kv_heads, head_dim] in the activation dtype.
//   A slot is block_id * block_size + offset_in_block.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum vt_dtype { VT_F32 = 0, VT_F16 = 1, VT_BF16 = 2, VT_I32 = 3, VT_I64 = 4, VT_U8 = 5 };

// ---- runtime --------------------------------------------------------------
const char* vt_last_error(void);
// CPU: returns "cpu"; CUDA: "cuda". Lets the loader check it got the right library.
const char* vt_backend_name(void);
// CPU: 1. CUDA: number of visible devices (0 when there is no GPU or driver).
int vt_device_count(void);
// CPU: starts the thread pool with num_threads workers (<= 0: one per core).
// CUDA: selects device_index, creates the stream and the cuBLASLt handle.
int vt_init(int device_index, int num_threads);
int vt_num_threads(void);
int vt_synchronize(void);
// Free and total bytes of device memory (CPU: from /proc/meminfo).
int vt_mem_info(uint64_t* free_bytes, uint64_t* total_bytes);
// A short description of the device (CPU: SIMD level and threads; CUDA: name, SMs).
const char* vt_device_name(void);

// ---- memory ---------------------------------------------------------------
// 64-byte aligned; 0 on failure. Contents are undefined.
uint64_t vt_malloc(uint64_t bytes);
int vt_free(uint64_t ptr);
// Host pointer for an address (identity on the CPU; for koffi.view()).
void* vt_host_ptr(uint64_t addr);
int vt_copy_h2d(uint64_t dst, const void* src, uint64_t bytes);
int vt_copy_d2h(void* dst, uint64_t src, uint64_t bytes);
int vt_copy_d2d(uint64_t dst, uint64_t src, uint64_t bytes);
int vt_memset(uint64_t dst, int value, uint64_t bytes);
// Elementwise dtype conversion between VT_F32 / VT_F16 / VT_BF16.
int vt_convert(uint64_t dst, int dst_dtype, uint64_t src, int src_dtype, uint64_t n);
// Fills n elements with uniform values in [-scale, scale) from a counter-based
// generator keyed by seed (same values on both libraries). For --load-format dummy.
int vt_fill_random(uint64_t dst, int dtype, uint64_t n, uint64_t seed, float scale);

// ---- model ops --------------------------------------------------------------
// out[t, :] = weight[ids[t], :] * scale
//   weight [vocab, hidden] (wdt), ids [num_tokens] int32, out [num_tokens, hidden] (act)
int vt_embedding(uint64_t out, uint64_t weight, uint64_t ids, int64_t num_tokens,
                 int64_t hidden, float scale, int wdt, int act);

// out[t, :] = x[rows[t], :]   (gather of rows, e.g. last token of each sequence)
//   x [*, width] (act), rows [n] int32, out [n, width] (act)
int vt_gather_rows(uint64_t out, uint64_t x, uint64_t rows, int64_t n, int64_t width, int act);

// out = a + b, elementwise over n values (act)
int vt_add(uint64_t out, uint64_t a, uint64_t b, int64_t n, int act);

// RMSNorm, optionally fused with the residual add.
//   x, out [num_tokens, hidden] (act); weight [hidden] (wdt); residual [num_tokens, hidden] or 0
//   residual == 0: out = x / rms(x) * (weight + weight_offset)
//   residual != 0: r = x + residual; residual <- r; out = r / rms(r) * (weight + weight_offset)
//   out may alias x. weight_offset is 1.0 for Gemma's (1 + w), else 0.
int vt_rms_norm(uint64_t out, uint64_t x, uint64_t residual, uint64_t weight,
                int64_t num_tokens, int64_t hidden, float eps, float weight_offset,
                int wdt, int act);

// LayerNorm with weight and bias, same residual convention as vt_rms_norm.
int vt_layer_norm(uint64_t out, uint64_t x, uint64_t residual, uint64_t weight,
                  uint64_t bias, int64_t num_tokens, int64_t hidden, float eps,
                  int wdt, int act);

// out[m, n] = sum_k x[m, k] * weight[n, k] (+ bias[n])
//   x [M, K] (act), weight [N, K] (wdt, row-major, PyTorch nn.Linear layout),
//   bias [N] (wdt) or 0, out [M, N] (act)
int vt_linear(uint64_t out, uint64_t x, uint64_t weight, uint64_t bias,
              int64_t M, int64_t N, int64_t K, int wdt, int act);

// Rotary embedding in place on q and k.
//   q: num_tokens rows of num_heads * head_dim values, rows q_stride apart (act)
//   k: num_tokens rows of num_kv_heads * head_dim values, rows k_stride apart (act)
//   positions [num_tokens] int32
//   cos_sin_cache [max_position, rotary_dim] f32: cos in [0, rotary_dim/2), sin after
//   is_neox = 1: rotate halves (x[i], x[i + rotary_dim/2]); 0: GPT-J pairs (x[2i], x[2i+1])
//   Dimensions >= rotary_dim within a head are left unchanged.
int vt_rope(uint64_t q, uint64_t k, uint64_t positions, uint64_t cos_sin_cache,
            int64_t num_tokens, int64_t num_heads, int64_t num_kv_heads,
            int64_t head_dim, int64_t rotary_dim, int64_t q_stride, int64_t k_stride,
            int is_neox, int act);

// Per-head RMSNorm of q and k (Qwen3's q_norm / k_norm, Gemma 3's) then the rotary
// embedding, in place, one call: each q head x <- rope(x / rms(x) * (q_weight +
// weight_offset)), k heads with k_weight. q, k, positions, cos_sin_cache and is_neox
// as in vt_rope (q and k may be views into one fused qkv row); q_weight, k_weight
// [head_dim] (wdt). The normalized value is rounded to act before the rotation, as
// vt_rms_norm then vt_rope would leave it.
int vt_qk_norm_rope(uint64_t q, uint64_t k, uint64_t q_weight, uint64_t k_weight, uint64_t positions,
                    uint64_t cos_sin_cache, int64_t num_tokens, int64_t num_heads, int64_t num_kv_heads,
                    int64_t head_dim, int64_t rotary_dim, int64_t q_stride, int64_t k_stride, float eps,
                    float weight_offset, int is_neox, int wdt, int act);

// vt_rope then vt_reshape_and_cache in one call (one launch on CUDA): q and k rotated
// in place as vt_rope does, then the rotated k row and the v row of each token written
// to k_cache / v_cache at its slot (a negative slot, padding, writes nothing).
//   q, k, positions, cos_sin_cache, is_neox as in vt_rope (views into one fused qkv
//   row allowed); v: num_tokens rows of num_kv_heads * head_dim, rows v_stride apart (act)
//   k_cache, v_cache [num_blocks, block_size, num_kv_heads, head_dim] (act);
//   slot_mapping [num_tokens] int32
// The q, k and cache bits are those of the two calls it replaces.
int vt_rope_and_cache(uint64_t q, uint64_t k, uint64_t v, uint64_t positions, uint64_t cos_sin_cache,
                      uint64_t k_cache, uint64_t v_cache, uint64_t slot_mapping, int64_t num_tokens,
                      int64_t num_heads, int64_t num_kv_heads, int64_t head_dim, int64_t rotary_dim,
                      int64_t q_stride, int64_t k_stride, int64_t v_stride, int is_neox, int act);

// vt_qk_norm_rope then vt_reshape_and_cache in one call (one launch on CUDA); arguments
// as in those two (q_weight, k_weight [head_dim] (wdt)); the same bits as the two calls.
int vt_qk_norm_rope_and_cache(uint64_t q, uint64_t k, uint64_t v, uint64_t q_weight, uint64_t k_weight,
                              uint64_t positions, uint64_t cos_sin_cache, uint64_t k_cache, uint64_t v_cache,
                              uint64_t slot_mapping, int64_t num_tokens, int64_t num_heads, int64_t num_kv_heads,
                              int64_t head_dim, int64_t rotary_dim, int64_t q_stride, int64_t k_stride,
                              int64_t v_stride, float eps, float weight_offset, int is_neox, int wdt, int act);

// Gated activations: x [num_tokens, 2 * d] = [gate | up] -> out [num_tokens, d]
//   silu:      out = silu(gate) * up
//   gelu_tanh: out = gelu_tanh(gate) * up      (Gemma's GeGLU)
int vt_silu_and_mul(uint64_t out, uint64_t x, int64_t num_tokens, int64_t d, int act);
int vt_gelu_tanh_and_mul(uint64_t out, uint64_t x, int64_t num_tokens, int64_t d, int act);
// Elementwise gelu with the tanh approximation (GPT-2's gelu_new), n values.
int vt_gelu_tanh(uint64_t out, uint64_t x, int64_t n, int act);

// out = x * scale, then soft-capped when soft_cap > 0: out = soft_cap * tanh(out / soft_cap),
// over n values (act); out may alias x. Final-logit soft-capping (Gemma 2) and
// Granite's residual_multiplier / logits_scaling.
int vt_scale_softcap(uint64_t out, uint64_t x, int64_t n, float scale, float soft_cap, int act);

// Writes each token's key and value into the paged cache.
//   key:   num_tokens rows of num_kv_heads * head_dim, rows key_stride apart (act)
//   value: same shape, rows value_stride apart (act)
//   k_cache, v_cache [num_blocks, block_size, num_kv_heads, head_dim] (act)
//   slot_mapping [num_tokens] int32; a negative slot skips the token (padding)
int vt_reshape_and_cache(uint64_t key, uint64_t value, uint64_t k_cache, uint64_t v_cache,
                         uint64_t slot_mapping, int64_t num_tokens, int64_t num_kv_heads,
                         int64_t head_dim, int64_t key_stride, int64_t value_stride, int act);

// Causal attention of a batch of sequences over the paged KV cache: one call for
// prefill, chunked prefill and decode (vLLM's varlen-with-block-table form).
//   q: num_tokens rows of num_heads * head_dim, rows q_stride apart (act)
//   query_start_loc [num_seqs + 1] int32: sequence i owns query rows
//     [query_start_loc[i], query_start_loc[i+1])
//   seq_lens [num_seqs] int32: tokens in the cache for sequence i, including
//     this step's (already written by vt_reshape_and_cache). Query row j of
//     sequence i (q_len rows) sits at position seq_lens[i] - q_len + j and
//     attends to key positions [max(0, pos - sliding_window + 1), pos].
//   block_tables [num_seqs, max_blocks_per_seq] int32
//   sliding_window: 0 = unlimited. soft_cap: 0 = none, else cap * tanh(s / cap).
//   GQA / MQA: query head h reads kv head h / (num_heads / num_kv_heads).
//   out [num_tokens, num_heads * head_dim] (act, contiguous)
int vt_attention(uint64_t out, uint64_t q, uint64_t k_cache, uint64_t v_cache,
                 uint64_t query_start_loc, uint64_t seq_lens, uint64_t block_tables,
                 int64_t num_seqs, int64_t num_tokens, int64_t max_query_len,
                 int64_t max_seq_len, int64_t num_heads, int64_t num_kv_heads,
                 int64_t head_dim, int64_t block_size, int64_t max_blocks_per_seq,
                 int64_t q_stride, float scale, int64_t sliding_window, float soft_cap,
                 int act);

// ---- mixture of experts ------------------------------------------------------
// A MoE layer: router logits (vt_linear) -> vt_moe_route (= vt_moe_topk_softmax -> vt_moe_permute) ->
// vt_gather_rows(x, sorted_token_ids) -> vt_moe_grouped_gemm (gate_up) -> vt_silu_and_mul
// -> vt_moe_grouped_gemm (down) -> vt_moe_unpermute_sum (the gather fused into the
// gate_up GEMM's loads: vt_moe_grouped_gemm_gather). Every row is computed alone,
// in a fixed order, so a token's output does not depend on the other tokens.

// Router: p = softmax(logits[t, :]) in f32, then the k largest p, descending (ties:
// lower expert id first, as torch.topk), divided by their sum when renormalize.
//   logits [T, E] (act); topk_weights [T, k] f32; topk_ids [T, k] int32; k <= E <= 1024
int vt_moe_topk_softmax(uint64_t topk_weights, uint64_t topk_ids, uint64_t logits, int64_t num_tokens,
                        int64_t num_experts, int64_t k, int renormalize, int act);

// Token-to-expert permutation of the num_pairs = T * k (token, slot) pairs, grouped by
// expert and in pair order within one expert.
//   topk_ids [num_pairs] int32 (pair p = t * k + j), each in [0, E)
//   expert_offsets [E + 1] int32: expert e's permuted rows are [offsets[e], offsets[e + 1])
//   sorted_token_ids [num_pairs] int32: the token (p / k) of each permuted row
//   inv_perm [num_pairs] int32: the permuted row of pair p
int vt_moe_permute(uint64_t expert_offsets, uint64_t sorted_token_ids, uint64_t inv_perm, uint64_t topk_ids,
                   int64_t num_pairs, int64_t num_experts, int64_t k);

// Router and permutation in one call: vt_moe_topk_softmax then vt_moe_permute of its
// T * k pairs, with the same outputs bit for bit (CUDA: one single-block launch up to
// 1,024 pairs, the two launches past that).
int vt_moe_route(uint64_t topk_weights, uint64_t topk_ids, uint64_t expert_offsets, uint64_t sorted_token_ids,
                 uint64_t inv_perm, uint64_t logits, int64_t num_tokens, int64_t num_experts, int64_t k,
                 int renormalize, int act);

// Grouped expert GEMM, one call for all experts: rows [offsets[e], offsets[e + 1]) of x
// times expert e's weight: out[r, n] = sum_k x[r, k] * weight[e, n, k].
//   x [R, K] (act), weight [E, N, K] (wdt), expert_offsets [E + 1] int32 with
//   offsets[E] = R = num_rows, out [R, N] (act). Experts without rows are not read.
int vt_moe_grouped_gemm(uint64_t out, uint64_t x, uint64_t weight, uint64_t expert_offsets, int64_t num_rows,
                        int64_t num_experts, int64_t N, int64_t K, int wdt, int act);

// vt_moe_grouped_gemm reading row r of its input as x[x_rows[r], :] (the gather of
// vt_gather_rows fused in); x_rows [num_rows] int32, or 0 for x[r, :].
int vt_moe_grouped_gemm_gather(uint64_t out, uint64_t x, uint64_t x_rows, uint64_t weight, uint64_t expert_offsets,
                               int64_t num_rows, int64_t num_experts, int64_t N, int64_t K, int wdt, int act);

// Weighted un-permute and sum, in f32, slots in order:
//   out[t, :] = sum_{j < k} topk_weights[t, j] * y[inv_perm[t * k + j], :]
//               (+ sigmoid(shared_gate[t]) * shared[t, :] when shared != 0; gate 0: weight 1)
//   y [T * k, hidden] (act), topk_weights [T, k] f32, inv_perm [T * k] int32,
//   shared [T, hidden] (act) or 0, shared_gate [T] (act) or 0, out [T, hidden] (act)
int vt_moe_unpermute_sum(uint64_t out, uint64_t y, uint64_t topk_weights, uint64_t inv_perm, uint64_t shared,
                         uint64_t shared_gate, int64_t num_tokens, int64_t k, int64_t hidden, int act);

// ---- sampling ---------------------------------------------------------------
// One token per row of logits, so that only the ids leave the device.
//   logits [n, vocab] (act); per-row parameters, each [n]:
//     temperature f32 (< 1e-5: greedy argmax, first index on ties),
//     top_k int32 (0: off), top_p f32 (1: off), min_p f32 (0: off),
//     uniform f32 in [0, 1): the row's one random draw (from the request's generator).
//   Random rows: p = softmax(logits / temperature); drop tokens with p < min_p * max(p);
//   keep the top_k largest (ties at the k-th kept); keep the smallest set of largest p
//   whose mass reaches top_p (ties at the boundary kept); renormalize; return the
//   first token id t (in id order) whose cumulative kept mass exceeds uniform * total.
//   out_ids [n] int32
int vt_sample(uint64_t out_ids, uint64_t logits, uint64_t temperature, uint64_t top_k,
              uint64_t top_p, uint64_t min_p, uint64_t uniform, int64_t n, int64_t vocab,
              int act);

// Log-softmax of the raw logits at chosen tokens, plus the top-k of each row.
//   logits [n, vocab] (act); chosen [n] int32
//   out_logprobs [n, k + 1] f32: column 0 = logprob of chosen[i], then the top k, descending
//   out_ids [n, k + 1] int32: chosen[i], then the top k ids (ties: lower id first)
//   out_ranks [n] int32: 1 + number of tokens whose logit is strictly greater than chosen's
int vt_logprobs(uint64_t out_logprobs, uint64_t out_ids, uint64_t out_ranks, uint64_t logits,
                uint64_t chosen, int64_t n, int64_t vocab, int64_t k, int act);

// Structured outputs: sets logits[rows[i], t] = -inf for each token t whose bit is
// clear in bitmask row i (bit t % 32 of word t / 32; set = allowed), before sampling.
//   logits [*, vocab] (act); bitmask [n, width] int32 with width >= ceil(vocab / 32);
//   rows [n] int32 (distinct logits rows)
int vt_apply_token_bitmask(uint64_t logits, uint64_t bitmask, uint64_t rows, int64_t n, int64_t vocab,
                           int64_t width, int act);

// ---- tensor parallelism ------------------------------------------------------
// Vocabulary-parallel embedding: this rank holds rows [vocab_start, vocab_end) of
// the table; other ids give zero rows (the all-reduce over ranks sums the one
// non-zero row). out[t, :] = ids[t] in range ? weight[ids[t] - vocab_start, :] * scale : 0
//   weight [vocab_end - vocab_start (or more: padding), hidden] (wdt), ids [num_tokens] int32,
//   out [num_tokens, hidden] (act)
int vt_vocab_embedding(uint64_t out, uint64_t weight, uint64_t ids, int64_t num_tokens, int64_t hidden,
                       float scale, int64_t vocab_start, int64_t vocab_end, int wdt, int act);

// Strided copy of `height` rows of `width` bytes: row r from src + r * src_pitch to
// dst + r * dst_pitch (cudaMemcpy2D on the stream; capturable). Rearranges an
// all-gather's rank-major [ranks, n, w] into [n, ranks * w].
int vt_copy_2d(uint64_t dst, int64_t dst_pitch, uint64_t src, int64_t src_pitch, int64_t width, int64_t height);

// NCCL, loaded at run time (CUDA library only; the CPU library returns an error:
// its ranks use the in-process communicator of src/distributed/in_process.ts).
// vt_nccl_load dlopens the library at `path` (a file, or a bare soname for the
// dynamic loader's search); 0 once its symbols resolve. vt_nccl_unique_id writes
// the 128-byte ncclUniqueId rank 0 hands the others. vt_nccl_init joins the
// communicator (ncclCommInitRank; blocks until every rank has joined), once per
// process. The collectives run on the library's stream (so CUDA graphs capture
// them) over n elements of dtype (VT_F32 / VT_F16 / VT_BF16 / VT_I32):
// vt_all_reduce sums in place; vt_all_gather writes every rank's n elements to
// out [world_size, n], rank-major.
int vt_nccl_load(const char* path);
int vt_nccl_version(void);
int vt_nccl_unique_id(uint8_t* out);
int vt_nccl_init(int world_size, int rank, const uint8_t* unique_id);
int vt_all_reduce(uint64_t buf, int64_t n, int dtype);
int vt_all_gather(uint64_t out, uint64_t in, int64_t n, int dtype);
int vt_nccl_destroy(void);

// ---- graphs -------------------------------------------------------------------
// Capture of everything enqueued on the library's stream between begin and end,
// replayed by launch (decode steps of a fixed batch size). The CPU library records
// the ops the capturing thread calls (with their arguments, not run) and replays
// them inside vt_graph_launch. A host copy during a capture fails it.
int vt_graph_begin(void);
// Ends the capture and instantiates it; returns a handle, 0 on failure.
uint64_t vt_graph_end(void);
int vt_graph_launch(uint64_t graph);
int vt_graph_destroy(uint64_t graph);

#ifdef __cplusplus
}
#endif
