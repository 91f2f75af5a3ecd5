#!/usr/bin/env bash
# Issue 21's batched targets for Llama-3-8B's shape on one GPU, in one call: the GPU
# test suite, `bench throughput` 1024/128 and 128/1024 (1000 prompts, 8192-token
# budget) and `bench serve` against `vllm-ts serve` at 8 req/s (1024 in, 128 out);
# a table last.
#
#   benchmarks/h200_serving_check.sh OUT_DIR [JS_ROOT]
# JS_ROOT as in benchmarks/h200_decode_check.sh (default .devbundle/js). SKIP_TESTS=1
# skips the test suite; NUM_SERVE (default 400) sets the served prompts.
set -uo pipefail
cd "$(dirname "$0")/.."
O=${1:?output directory}
JS=${2:-.devbundle/js}
CLI=$JS/entrypoints/cli/main.js
[ -f "$CLI" ] || CLI=$JS/src/entrypoints/cli/main.js
mkdir -p "$O"
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 ))s] $*"; }
F=(--load-format dummy --device cuda --tokenizer models/tiny-llama-kjv --max-model-len 4096)
L=benchmarks/configs/llama-3-8b
if [ -z "${SKIP_TESTS:-}" ]; then
  VLLM_TS_GPU_REPORT="$O" timeout 300 node --test "$JS"/tests/gpu/ > "$O/tests.txt" 2>&1
  echo "GPU tests rc=$?"; grep -E "^# (pass|fail)|^not ok" "$O/tests.txt"
  el tests
fi
tp() { timeout 150 node "$CLI" bench throughput $L "${F[@]}" --max-num-batched-tokens 8192 --num-prompts 1000 \
  --input-len "$1" --output-len "$2" --output-json "$O/l8b-tp-$1-$2.json" > "$O/l8b-tp-$1-$2.log" 2>&1 || { echo "tp $1/$2 failed"; tail -3 "$O/l8b-tp-$1-$2.log"; }; el "tp $1/$2"; }
[ -z "${SKIP_TP:-}" ] && tp 1024 128
[ -z "${SKIP_TP:-}" ] && tp 128 1024
PORT=8791
node "$CLI" serve $L "${F[@]}" --port $PORT --disable-log-requests > "$O/serve-server.log" 2>&1 &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT
node -e "
  const alive = () => { try { process.kill($SERVER, 0); return true; } catch { return false; } };
  (async () => { for (let i = 0; i < 360 && alive(); i++) { try { if ((await fetch('http://127.0.0.1:$PORT/health')).ok) process.exit(0); } catch {} await new Promise(r => setTimeout(r, 500)); } process.exit(1); })();
" || { echo "server did not start"; tail -5 "$O/serve-server.log"; }
el "server up"
timeout 150 node "$CLI" bench serve --port $PORT --tokenizer models/tiny-llama-kjv --num-prompts "${NUM_SERVE:-400}" --request-rate 8 \
  --random-input-len 1024 --random-output-len 128 --ignore-eos --result-file "$O/l8b-serve-8rps.json" > "$O/l8b-serve.txt" 2>&1 || { echo "serve bench failed"; tail -5 "$O/l8b-serve.txt"; }
el serve
python3 - "$O" <<'PY'
import glob, json, os, sys
print('| run | result |\n|---|---|')
for p in sorted(glob.glob(os.path.join(sys.argv[1], 'l8b-*.json'))):
    d = json.load(open(p)); k = os.path.basename(p)[:-5]
    if 'requests_per_second' in d:
        print(f"| {k} | {d['requests_per_second']:.2f} req/s, {d['output_tokens_per_second']:.0f} out tok/s |")
txt = os.path.join(sys.argv[1], 'l8b-serve.txt')
if os.path.exists(txt):
    keep = ('Successful', 'Failed', 'Request throughput', 'Median TTFT', 'P99 TTFT', 'Median TPOT', 'P99 TPOT')
    vals = [l.split(':')[0].strip() + ' ' + l.split()[-1] for l in open(txt) if l.startswith(keep)]
    print('| serve 8 req/s 1024/128 | ' + ', '.join(vals) + ' |')
PY
