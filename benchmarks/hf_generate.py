"""HuggingFace transformers generate() on a config's shape with random bf16 weights:
what a user would run instead on the same GPU (issue 6's comparison).

    python3 benchmarks/hf_generate.py --config benchmarks/configs/llama-3-8b/config.json \
        --batch-size 1 --input-len 1024 --output-len 128 [--compile] [--json out.json]

Prints and writes: prefill (TTFT) time, decode time per token and output tokens/s.
"""
import argparse
import json
import time

import torch
from transformers import AutoConfig, AutoModelForCausalLM


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--input-len", type=int, default=1024)
    ap.add_argument("--output-len", type=int, default=128)
    ap.add_argument("--iters", type=int, default=2)
    ap.add_argument("--compile", action="store_true", help="static cache + torch.compile")
    ap.add_argument("--json")
    a = ap.parse_args()

    cfg = AutoConfig.from_pretrained(a.config)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.bfloat16, attn_implementation="sdpa")
    model.eval()
    for p in model.parameters():
        p.data.uniform_(-1e-3, 1e-3)
    ids = torch.randint(0, 10000, (a.batch_size, a.input_len), device="cuda")
    kw = dict(do_sample=False, min_new_tokens=a.output_len, max_new_tokens=a.output_len, pad_token_id=0)
    if a.compile:
        kw["cache_implementation"] = "static"
        model.forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=True)

    def timed(n_new: int) -> float:
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.no_grad():
            model.generate(ids, **{**kw, "min_new_tokens": n_new, "max_new_tokens": n_new})
        torch.cuda.synchronize()
        return time.perf_counter() - t0

    timed(8)  # warm-up
    ttft = min(timed(1) for _ in range(a.iters))
    total = min(timed(a.output_len) for _ in range(a.iters))
    tpot = (total - ttft) / (a.output_len - 1)
    res = {
        "benchmark": "hf_generate", "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__,
        "device": torch.cuda.get_device_name(), "config": a.config, "batch_size": a.batch_size,
        "input_len": a.input_len, "output_len": a.output_len, "compiled": a.compile,
        "ttft_s": ttft, "total_s": total, "tpot_ms": tpot * 1000,
        "output_tokens_per_s": a.batch_size * a.output_len / total,
    }
    print(json.dumps(res))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
