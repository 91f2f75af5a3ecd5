// llama.cpp's side of benchmarks/cpu_vs_llamacpp: its C library (libllama, as
// node-llama-cpp ships it prebuilt) driven directly, as llama-bench does: no
// sampler chain, no JavaScript, greedy by an argmax over the last row's logits.
// Built by run.ts against the llama.h of the same release.
//   llama_bench bench  <model.gguf> <threads> <prompt_len> <decode_steps> <prefill_reps> <backend_dir>
//   llama_bench greedy <model.gguf> <threads> <max_tokens> <backend_dir> <id> <id> ...
// Prints one JSON object on stdout.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <chrono>
#include <vector>

#include "ggml-backend.h"
#include "llama.h"

static double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static void quiet(ggml_log_level level, const char* text, void*) {
  if (level >= GGML_LOG_LEVEL_ERROR || getenv("LLAMA_BENCH_VERBOSE")) fputs(text, stderr);
}

struct Engine {
  llama_model* model = nullptr;
  llama_context* ctx = nullptr;
  int n_vocab = 0;
};

static Engine open_engine(const char* path, int threads, const char* backend_dir) {
  llama_log_set(quiet, nullptr);
  ggml_backend_load_all_from_path(backend_dir);
  llama_backend_init();
  Engine e;
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  mp.progress_callback = [](float, void*) { return true; };  // no progress dots
  e.model = llama_model_load_from_file(path, mp);
  if (!e.model) {
    fprintf(stderr, "llama_bench: cannot load %s\n", path);
    exit(1);
  }
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = 2048;
  cp.n_batch = 512;
  cp.n_ubatch = 512;
  cp.n_seq_max = 1;
  cp.n_threads = threads;
  cp.n_threads_batch = threads;
  cp.no_perf = true;
  if (getenv("LLAMA_BENCH_FA")) cp.flash_attn_type = llama_flash_attn_type(atoi(getenv("LLAMA_BENCH_FA")));
  e.ctx = llama_init_from_model(e.model, cp);
  if (!e.ctx) {
    fprintf(stderr, "llama_bench: cannot create a context\n");
    exit(1);
  }
  e.n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(e.model));
  return e;
}

// Runs tokens[0, n) at positions pos.. with logits for the last one only; returns its argmax.
static int decode(Engine& e, const llama_token* tokens, int n, int pos) {
  llama_batch b = llama_batch_init(n, 0, 1);
  for (int i = 0; i < n; i++) {
    b.token[i] = tokens[i];
    b.pos[i] = pos + i;
    b.n_seq_id[i] = 1;
    b.seq_id[i][0] = 0;
    b.logits[i] = i == n - 1;
  }
  b.n_tokens = n;
  if (llama_decode(e.ctx, b) != 0) {
    fprintf(stderr, "llama_bench: llama_decode failed\n");
    exit(1);
  }
  llama_batch_free(b);
  const float* logits = llama_get_logits_ith(e.ctx, n - 1);
  int best = 0;
  for (int v = 1; v < e.n_vocab; v++)
    if (logits[v] > logits[best]) best = v;
  return best;
}

int main(int argc, char** argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: see the top of llama_bench.cpp\n");
    return 2;
  }
  const bool bench = strcmp(argv[1], "bench") == 0;
  const int threads = atoi(argv[3]);
  if (bench) {
    const int prompt_len = atoi(argv[4]), steps = atoi(argv[5]), reps = atoi(argv[6]);
    Engine e = open_engine(argv[2], threads, argv[7]);
    // The prompt of benchmarks/forward.ts: token i is 3 + (i * 7919) mod (vocab - 3).
    std::vector<llama_token> prompt(prompt_len);
    for (int i = 0; i < prompt_len; i++) prompt[i] = 3 + int((int64_t(i) * 7919) % (e.n_vocab - 3));
    double prefill = 1e30;
    for (int r = 0; r <= reps; r++) {  // one warm-up, then `reps` timed, the fastest kept
      llama_memory_clear(llama_get_memory(e.ctx), true);
      double t0 = now_ms();
      decode(e, prompt.data(), prompt_len, 0);
      double dt = now_ms() - t0;
      if (r > 0 && dt < prefill) prefill = dt;
    }
    llama_memory_clear(llama_get_memory(e.ctx), true);
    llama_token tok = decode(e, prompt.data(), prompt_len, 0);
    int pos = prompt_len;
    for (int i = 0; i < 8; i++) tok = decode(e, &tok, 1, pos++);  // warm-up steps
    double t0 = now_ms();
    for (int i = 0; i < steps; i++) tok = decode(e, &tok, 1, pos++);
    double decode_ms = (now_ms() - t0) / steps;
    printf("{\"prefill_ms\":%.4f,\"decode_ms\":%.5f,\"vocab\":%d}\n", prefill, decode_ms, e.n_vocab);
  } else {
    const int max_tokens = atoi(argv[4]);
    Engine e = open_engine(argv[2], threads, argv[5]);
    std::vector<llama_token> ids;
    for (int i = 6; i < argc; i++) ids.push_back(atoi(argv[i]));
    int pos = 0;
    llama_token tok = decode(e, ids.data(), int(ids.size()), pos);
    pos += int(ids.size());
    printf("{\"ids\":[%d", tok);
    for (int i = 1; i < max_tokens; i++) {
      tok = decode(e, &tok, 1, pos++);
      printf(",%d", tok);
    }
    printf("]}\n");
  }
  return 0;
}
