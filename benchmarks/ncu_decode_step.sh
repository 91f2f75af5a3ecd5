#!/usr/bin/env bash
# Per-kernel times of one batch-1 decode step on a CUDA device (the tables of
# benchmarks/results/h200/ncu-decode-step-*.md): Nsight Compute times every kernel of
# the 40th CUDA-graph replay (VLLM_TS_PROFILE_GRAPH_LAUNCH, csrc/cuda/graph.cu), with
# the clocks and caches as it finds them, then benchmarks/ncu_table.py sums them by
# kernel and lists the step in order.
#
#   benchmarks/ncu_decode_step.sh CONFIG INPUT_LEN OUT_PREFIX [VLLM_TS_CLI]
# e.g. benchmarks/ncu_decode_step.sh benchmarks/configs/qwen3-30b-a3b 32 /tmp/q3
# writes OUT_PREFIX.csv (ncu's raw rows) and OUT_PREFIX.md (the table).
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${1:?config directory}
INPUT=${2:?input length}
OUT=${3:?output prefix}
CLI=${4:-dist/entrypoints/cli/main.js}
NCU=${NCU:-$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)}
VLLM_TS_PROFILE_GRAPH_LAUNCH=40 "$NCU" --profile-from-start off --clock-control none --cache-control none \
  --metrics gpu__time_duration.sum --print-units base --csv --page raw --log-file "$OUT.csv" \
  node "$CLI" bench latency "$CONFIG" --load-format dummy --device cuda --tokenizer models/tiny-llama-kjv \
  --max-model-len 4096 --input-len "$INPUT" --output-len 64 --batch-size 1 --num-iters 1 --num-iters-warmup 0 > "$OUT.log" 2>&1
python3 benchmarks/ncu_table.py "$OUT.csv" > "$OUT.md"
head -20 "$OUT.md"
