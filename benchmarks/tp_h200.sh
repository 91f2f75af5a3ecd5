#!/usr/bin/env bash
# Tensor parallelism on 2 H200s (issue 24), TP=1 and TP=2 runs alternated in one
# session so their ratios come from one machine: Llama-3-8B's shape (random bf16
# weights) through `bench latency` at batch 1 (1024 in, 128 out) and batch 8 (32 in,
# 128 out) and `bench throughput` (1024 in, 128 out, 1000 prompts); then
# Llama-3-70B's shape at TP=2 only (141 GB of bf16 weights do not fit one GPU) at
# batch 1 and 8. Prints the table of benchmarks/tp_table.mjs (each batch-1 TPOT beside
# its floor: one GPU's share of the weights over 4.29 TB/s).
#
#   benchmarks/tp_h200.sh OUT_DIR [CLI]
# CLI: how to start vllm-ts (default: node dist/entrypoints/cli/main.js, so `npm run
# build` first). NVLink multicast stays off (NCCL_NVLS_ENABLE=0, exported here and set
# again by vllm-ts in each rank's environment). TP_SKIP="70b throughput" skips parts;
# TP_ROUNDS (default 2) is how many times each TP=1 / TP=2 pair alternates.
# TP_SMOKE=1 runs the same commands on the CPU with the tiny model and few prompts
# (checks the script, measures nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
O=${1:?output directory}
CLI=${2:-node dist/entrypoints/cli/main.js}
export NCCL_NVLS_ENABLE=0
mkdir -p "$O"
M8=benchmarks/configs/llama-3-8b
M70=benchmarks/configs/llama-3-70b
F=(--load-format dummy --device cuda --tokenizer models/tiny-llama-kjv --max-model-len 4096)
ITERS=(--num-iters-warmup 3 --num-iters 3)
PROMPTS=1000
if [[ "${TP_SMOKE:-0}" == 1 ]]; then
  M8=models/tiny-llama-kjv M70=models/tiny-llama-kjv
  F=(--device cpu --max-model-len 2048) ITERS=(--num-iters-warmup 0 --num-iters 1) PROMPTS=8
fi
skip() { [[ " ${TP_SKIP:-} " == *" $1 "* ]]; }

for round in $(seq 1 "${TP_ROUNDS:-2}"); do
  for tp in 1 2; do
    echo "== Llama-3-8B shape, TP=$tp, round $round"
    $CLI bench latency $M8 "${F[@]}" "${ITERS[@]}" --tensor-parallel-size $tp --input-len 1024 --output-len 128 --batch-size 1 \
      --output-json "$O/8b-latency-bs1-tp$tp-r$round.json"
    $CLI bench latency $M8 "${F[@]}" "${ITERS[@]}" --tensor-parallel-size $tp --input-len 32 --output-len 128 --batch-size 8 \
      --output-json "$O/8b-latency-bs8-tp$tp-r$round.json"
    if ! skip throughput; then
      $CLI bench throughput $M8 "${F[@]}" --tensor-parallel-size $tp --max-num-batched-tokens 8192 --input-len 1024 --output-len 128 \
        --num-prompts $PROMPTS --output-json "$O/8b-throughput-tp$tp-r$round.json"
    fi
  done
done
if ! skip 70b; then
  echo "== Llama-3-70B shape, TP=2"
  $CLI bench latency $M70 "${F[@]}" "${ITERS[@]}" --tensor-parallel-size 2 --input-len 1024 --output-len 128 --batch-size 1 \
    --output-json "$O/70b-latency-bs1-tp2.json"
  $CLI bench latency $M70 "${F[@]}" "${ITERS[@]}" --tensor-parallel-size 2 --input-len 32 --output-len 128 --batch-size 8 \
    --output-json "$O/70b-latency-bs8-tp2.json"
fi
node benchmarks/tp_table.mjs "$O" | tee "$O/table.md"
