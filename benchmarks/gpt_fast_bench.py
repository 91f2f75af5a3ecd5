"""gpt-fast (pytorch-labs/gpt-fast at 32971d3, its model.py and generate.py unmodified)
on Llama-3-8B's shape with random bf16 weights, decode compiled as its generate.py
main() does (torch.compile(decode_one_token, mode="reduce-overhead", fullgraph=True)),
sampling as main()'s defaults (temperature 0.8, top_k 200). The gpt-fast source is not
part of this repository: pass the directory holding model.py / generate.py /
tokenizer.py.

    python3 benchmarks/gpt_fast_bench.py --gpt-fast-dir DIR --case 1x1024x128 --case 8x32x128 --json out.json

A case is BATCHxINPUTxOUTPUT; each is timed as gpt-fast's generate() end to end
(after a compiling warm-up), and TPOT from a 2-token run: (t(out) - t(2)) / (out - 2).
"""
import argparse
import json
import sys
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gpt-fast-dir", required=True)
    ap.add_argument("--case", action="append", required=True, help="BATCHxINPUTxOUTPUT")
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    sys.path.insert(0, a.gpt_fast_dir)
    import generate as gf  # gpt-fast's generate.py
    from model import Transformer  # gpt-fast's model.py

    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Transformer.from_name("Llama-3-8B")
    model = model.to(dtype=torch.bfloat16).eval()
    for p in model.parameters():
        p.data.normal_(0.0, 0.02)
    # As generate.py's main() with compile=True.
    decode_one_token = gf.decode_one_token
    gf.decode_one_token = torch.compile(decode_one_token, mode="reduce-overhead", fullgraph=True)

    results = []
    for case in a.case:
        bs, n_in, n_out = (int(v) for v in case.split("x"))
        prompt = torch.randint(0, 1024, (n_in,), device="cuda", dtype=torch.int64)  # main()'s synthetic prompt

        def run(n: int) -> float:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            gf.generate(model, prompt, n, batch_size=bs, interactive=False, draft_model=None, temperature=0.8, top_k=200)
            torch.cuda.synchronize()
            return time.perf_counter() - t0

        t0 = time.perf_counter()
        run(n_out)  # compiles
        compile_s = time.perf_counter() - t0
        run(n_out)
        short = sorted(run(2) for _ in range(a.iters))[a.iters // 2]
        full = sorted(run(n_out) for _ in range(a.iters))[a.iters // 2]
        res = {
            "benchmark": "gpt_fast", "commit": "32971d3", "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__,
            "device": torch.cuda.get_device_name(), "model": "Llama-3-8B (Transformer.from_name), random bf16",
            "batch_size": bs, "input_len": n_in, "output_len": n_out, "compile_s": compile_s,
            "latency_s": full, "tpot_ms": (full - short) / (n_out - 2) * 1000,
            "output_tokens_per_s": bs * n_out / full,
        }
        print(json.dumps(res), flush=True)
        results.append(res)
        if a.json:  # after each case, so that a time limit keeps the finished ones
            with open(a.json, "w") as f:
                json.dump(results, f, indent=2)
        torch._dynamo.reset()  # a fresh compile for the next shape, as a new main() would
        gf.decode_one_token = torch.compile(decode_one_token, mode="reduce-overhead", fullgraph=True)


if __name__ == "__main__":
    main()
