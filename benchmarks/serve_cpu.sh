#!/usr/bin/env bash
# `vllm-ts bench serve` against `vllm-ts serve` on the tiny model on the CPU:
# CONC concurrent streams (default 256), random dataset, with /health probed
# throughout. Needs a built package (npm run build: dist/ and build/libvllm_cpu.so).
#   benchmarks/serve_cpu.sh [RESULT_DIR]
# Environment: THREADS (server kernel threads, default: all cores), SERVER_CPUS /
# CLIENT_CPUS (taskset lists to pin server and load generator apart), NUM_PROMPTS,
# CONC, IN, OUTLEN, TAG (suffix of the result file), PORT.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-benchmarks/results}
mkdir -p "$DIR"
PORT=${PORT:-8765}
THREADS=${THREADS:-$(nproc)}
NUM_PROMPTS=${NUM_PROMPTS:-1024}
CONC=${CONC:-256}
IN=${IN:-128}
OUTLEN=${OUTLEN:-128}
TAG=${TAG:-${THREADS}t}
pin() { if [ -n "${1:-}" ]; then echo "taskset -c $1"; fi; }

$(pin "${SERVER_CPUS:-}") node dist/entrypoints/cli/main.js serve models/tiny-llama-kjv --device cpu --port "$PORT" \
  --num-threads "$THREADS" --max-num-seqs "$CONC" --disable-log-requests > "$DIR/server_$TAG.log" 2>&1 &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT
node -e "
  const url = 'http://127.0.0.1:$PORT/health';
  const alive = () => { try { process.kill($SERVER, 0); return true; } catch { return false; } };
  (async () => { for (let i = 0; i < 240 && alive(); i++) { try { if ((await fetch(url)).ok) process.exit(0); } catch {} await new Promise(r => setTimeout(r, 500)); } process.exit(1); })();
" || { echo "server did not start:"; cat "$DIR/server_$TAG.log"; exit 1; }

$(pin "${CLIENT_CPUS:-}") node dist/entrypoints/cli/main.js bench serve --port "$PORT" --num-prompts "$NUM_PROMPTS" \
  --max-concurrency "$CONC" --random-input-len "$IN" --random-output-len "$OUTLEN" --ignore-eos \
  --result-file "$DIR/serve_cpu_$TAG.json" | tee "$DIR/serve_cpu_$TAG.txt"
