"""The table of benchmarks/peers_h200.sh: reads its output directory and prints
vllm-ts, gpt-fast and HF transformers side by side, each peer's time over vllm-ts's,
and vllm-ts's over the floor (15.0 GB of weights a step over the measured copy
bandwidth, 4.29 TB/s: 3.50 ms; bs 8: 128 steps of it plus the prefill, ~460 ms).

    python3 benchmarks/peers_table.py OUT_DIR [--floor-ms 3.50]
"""
import argparse
import json
import os


def load(d: str, name: str):
    p = os.path.join(d, name)
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--floor-ms", type=float, default=3.50)
    ap.add_argument("--floor-bs8-ms", type=float, default=460.0)
    a = ap.parse_args()
    v1, v8 = load(a.dir, "vllm-ts-bs1.json"), load(a.dir, "vllm-ts-bs8.json")
    gf = load(a.dir, "gpt-fast.json") or []
    gf1 = next((r for r in gf if r["batch_size"] == 1), None)
    gf8 = next((r for r in gf if r["batch_size"] == 8), None)
    hf1 = load(a.dir, "hf-bs1.json")
    rows = []
    if v1:
        t = v1["avg_tpot"] * 1000
        cells = [f"{t:.2f} ms"]
        for peer in (gf1["tpot_ms"] if gf1 else None, hf1["tpot_ms"] if hf1 else None):
            cells.append(f"{peer:.2f} ms ({peer / t:.2f}x)" if peer else "-")
        rows.append(["batch-1 TPOT, 1024 in, 128 out", *cells, f"{a.floor_ms:.2f} ms", f"{t / a.floor_ms:.2f}"])
    if v8:
        t = v8["avg_latency"] * 1000
        peer = gf8["latency_s"] * 1000 if gf8 else None
        rows.append(["bench latency bs 8, 32 in, 128 out", f"{t:.0f} ms", f"{peer:.0f} ms ({peer / t:.2f}x)" if peer else "-", "-",
                     f"~{a.floor_bs8_ms:.0f} ms", f"{t / a.floor_bs8_ms:.2f}"])
    head = ["workload", "vllm-ts", "gpt-fast 32971d3 (peer / vllm-ts)", "HF eager (peer / vllm-ts)", "floor", "vllm-ts / floor"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
