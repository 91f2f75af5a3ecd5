#!/usr/bin/env bash
# vllm-ts beside its peers on one GPU, in one call, so the ratios in docs/benchmarks.md
# come from one machine and one session (issue 21): Llama-3-8B's shape with random
# bf16 weights, batch-1 TPOT at a 1024-token prompt (128 out) and the batch-8
# latency case (32 in, 128 out), for
#   - vllm-ts: `vllm-ts bench latency benchmarks/configs/llama-3-8b --load-format dummy ...`
#   - gpt-fast 32971d3 (model.py/generate.py unmodified, decode compiled with
#     mode="reduce-overhead"): benchmarks/gpt_fast_bench.py
#   - HF transformers eager generate(): benchmarks/hf_generate.py
# then prints one table with each peer's time over vllm-ts's.
#
#   benchmarks/peers_h200.sh GPT_FAST_DIR OUT_DIR [VLLM_TS_CLI]
# GPT_FAST_DIR: a checkout of pytorch-labs/gpt-fast at 32971d3 (model.py, generate.py,
# tokenizer.py; not part of this repository). VLLM_TS_CLI: the compiled CLI
# (default dist/entrypoints/cli/main.js). The tokenizer is the tiny one (ids in range;
# the weights are random, so is the text). PEERS_SKIP="gpt-fast hf" skips peers;
# GPT_FAST_TIMEOUT (seconds) bounds gpt-fast, whose compile (inductor with
# coordinate-descent tuning, as its generate.py sets) takes the longest.
set -euo pipefail
cd "$(dirname "$0")/.."
G=${1:?gpt-fast directory}
O=${2:?output directory}
CLI=${3:-dist/entrypoints/cli/main.js}
M=benchmarks/configs/llama-3-8b
mkdir -p "$O"
F=(--load-format dummy --device cuda --tokenizer models/tiny-llama-kjv --max-model-len 4096 --num-iters 3)
skip() { [[ " ${PEERS_SKIP:-} " == *" $1 "* ]]; }

echo "== vllm-ts"
node "$CLI" bench latency $M "${F[@]}" --input-len 1024 --output-len 128 --batch-size 1 --output-json "$O/vllm-ts-bs1.json"
node "$CLI" bench latency $M "${F[@]}" --input-len 32 --output-len 128 --batch-size 8 --output-json "$O/vllm-ts-bs8.json"
if ! skip hf; then
  echo "== HF transformers (eager)"
  python3 benchmarks/hf_generate.py --config $M/config.json --batch-size 1 --input-len 1024 --output-len 128 --json "$O/hf-bs1.json" || echo "hf failed"
fi
if ! skip gpt-fast; then
  echo "== gpt-fast"
  timeout "${GPT_FAST_TIMEOUT:-900}" python3 benchmarks/gpt_fast_bench.py --gpt-fast-dir "$G" --case 1x1024x128 --case 8x32x128 --json "$O/gpt-fast.json" || echo "gpt-fast failed"
fi
python3 benchmarks/peers_table.py "$O"
