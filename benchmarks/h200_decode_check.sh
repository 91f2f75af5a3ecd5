#!/usr/bin/env bash
# The GPU checks and decode numbers of docs/benchmarks.md's "Fusions" section in one
# call (what the device runs of 2026-12-02 pm ran): the GPU test suite, bench latency
# for Qwen3-30B-A3B and Llama-3-8B at batch 1 and 8, the per-kernel step of each
# (benchmarks/ncu_decode_step.sh), Qwen3-30B-A3B's two throughput cases; a table last.
#
#   benchmarks/h200_decode_check.sh OUT_DIR [JS_ROOT]
# JS_ROOT: the TypeScript compiled with the GPU tests (default .devbundle/js, from
# scripts/devbundle.sh, whose header says how a device machine without Node starts).
# The native libraries must be built (VLLM_TS_NATIVE_DIR or build/). Steps that fail
# are reported and the rest still run.
set -uo pipefail
cd "$(dirname "$0")/.."
O=${1:?output directory}
JS=${2:-.devbundle/js}
CLI=$JS/entrypoints/cli/main.js
[ -f "$CLI" ] || CLI=$JS/src/entrypoints/cli/main.js
TESTS=$JS/tests/gpu
mkdir -p "$O"
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 ))s] $*"; }
F=(--load-format dummy --device cuda --tokenizer models/tiny-llama-kjv --max-model-len 4096)
Q=benchmarks/configs/qwen3-30b-a3b
L=benchmarks/configs/llama-3-8b
VLLM_TS_GPU_REPORT="$O" timeout 300 node --test "$TESTS"/ > "$O/tests.txt" 2>&1
echo "GPU tests rc=$?"; grep -E "^# (pass|fail)|^not ok" "$O/tests.txt"
el tests
bench() { local tag=$1; shift; timeout 120 node "$CLI" bench "$@" "${F[@]}" --output-json "$O/$tag.json" > "$O/$tag.log" 2>&1 || { echo "$tag failed"; tail -3 "$O/$tag.log"; }; el "$tag"; }
bench q3-bs1 latency $Q --input-len 32 --output-len 128 --batch-size 1 --num-iters 3
bench q3-bs8 latency $Q --input-len 32 --output-len 128 --batch-size 8 --num-iters 3
[ -z "${SKIP_L8B:-}" ] && bench l8b-bs1 latency $L --input-len 1024 --output-len 128 --batch-size 1 --num-iters 3
[ -z "${SKIP_L8B:-}" ] && bench l8b-bs8 latency $L --input-len 32 --output-len 128 --batch-size 8 --num-iters 3
timeout 120 bash benchmarks/ncu_decode_step.sh $Q 32 "$O/ncu-q3" "$CLI" > /dev/null 2>&1 || echo "ncu q3 failed"
[ -z "${SKIP_L8B:-}" ] && { timeout 120 bash benchmarks/ncu_decode_step.sh $L 1024 "$O/ncu-l8b" "$CLI" > /dev/null 2>&1 || echo "ncu l8b failed"; }
el ncu
bench q3-tp-1024-128 throughput $Q --input-len 1024 --output-len 128 --num-prompts 100 --max-num-batched-tokens 8192
bench q3-tp-128-1024 throughput $Q --input-len 128 --output-len 1024 --num-prompts 100 --max-num-batched-tokens 8192
# The same 1024/128 case with the skinny expert GEMM at every size (before the tiled kernel).
VLLM_TS_MOE_TILED=0 bench q3-tp-1024-128-skinny throughput $Q --input-len 1024 --output-len 128 --num-prompts 100 --max-num-batched-tokens 8192
python3 - "$O" <<'PY'
import glob, json, os, sys
print('| run | result |\n|---|---|')
for p in sorted(glob.glob(os.path.join(sys.argv[1], '*.json'))):
    d = json.load(open(p))
    if not isinstance(d, dict) or 'benchmark' not in d: continue
    k = os.path.basename(p)[:-5]
    if d['benchmark'] == 'latency':
        print(f"| {k} | {d['avg_latency'] * 1e3:.1f} ms, TTFT {d['avg_ttft'] * 1e3:.2f} ms, TPOT {d['avg_tpot'] * 1e3:.3f} ms |")
    else:
        print(f"| {k} | {d['requests_per_second']:.2f} req/s, {d['output_tokens_per_second']:.0f} out tok/s |")
PY
