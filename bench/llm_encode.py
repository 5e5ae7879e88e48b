"""Embedding-generation speed of the default backbones (prints; never asserts).

    .venv/bin/python bench/llm_encode.py                       # SmolLM2 and MiniLM, bf16 + fp32
    .venv/bin/python bench/llm_encode.py --n 200 --models minilm --threads 1

Texts: ML-100k item prompts when data/prepared/movielens-100k-*/items.parquet exists, else
synthetic product texts of similar length. Per model: items/s, real tokens/s and achieved
FLOP/s (2 x non-embedding parameters x real tokens / s), beside a plain matmul of the
model's width in the same dtype and thread count: the ceiling one could hope for. The last
line is a JSON list of the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import polars as pl
import torch

from pipeline.llm import LLMSpec, TextEncoder, load_model
from pipeline.prompts import PromptConfig, item_texts

MODELS = {
    "smollm2-bf16": LLMSpec(source="smollm2", dtype="bf16", device="cpu"),
    "smollm2-fp32": LLMSpec(source="smollm2", dtype="fp32", device="cpu"),
    "minilm": LLMSpec(source="minilm", dtype="fp32", device="cpu"),
    "minilm-bf16": LLMSpec(source="minilm", dtype="bf16", device="cpu"),
}


def bench_texts(n: int) -> tuple[list[str], str]:
    found = sorted(Path("data/prepared").glob("movielens-100k-*/items.parquet"))
    if found:
        _, texts = item_texts(pl.read_parquet(found[0]), PromptConfig(item_type="movie"))
        return (texts * (n // len(texts) + 1))[:n], str(found[0].parent)
    rng = np.random.default_rng(0)
    adj = ["waterproof", "ergonomic", "vintage", "stainless", "organic", "compact", "wireless"]
    noun = ["backpack", "kettle", "headphones", "desk lamp", "tent", "guitar strings", "blender"]
    brand = ["Acme", "Northwind", "Contoso", "Globex", "Initech"]
    texts = [
        f"A product with these attributes:\ntitle is {rng.choice(adj)} {rng.choice(noun)} "
        f"{rng.integers(1, 99)}; brand is {rng.choice(brand)}; categories is "
        f"{rng.choice(noun).title()}, Accessories"
        for _ in range(n)
    ]
    return texts, "synthetic"


def matmul_flops(rows: int, width: int, inner: int, dtype: torch.dtype, seconds: float = 1.5) -> float:
    """FLOP/s of [rows, width] @ [width, inner], repeated for about `seconds`."""
    a = torch.randn(rows, width, dtype=dtype)
    b = torch.randn(width, inner, dtype=dtype)
    for _ in range(3):
        a @ b
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        reps += 1
    return 2.0 * rows * width * inner * reps / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500, help="texts per model")
    ap.add_argument("--models", default="smollm2-bf16,smollm2-fp32,minilm-bf16,minilm",
                    help=f"comma list of {', '.join(MODELS)}")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--cache-dir", type=Path, default=None, help="converted-model cache")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    texts, origin = bench_texts(args.n)
    print(f"{len(texts)} texts from {origin}; {args.threads} threads; "
          f"load average {os.getloadavg()[0]:.1f}")
    figures = []
    for name in args.models.split(","):
        t0 = time.perf_counter()
        loaded = load_model(MODELS[name], args.cache_dir)
        load_s = time.perf_counter() - t0
        enc = TextEncoder(loaded, batch_size=args.batch_size, progress=False)
        enc.encode(texts[:16])  # warm-up: first calls allocate and pick kernels
        _, st = enc.encode_with_stats(texts)
        backbone = enc._backbone()
        emb = backbone.get_input_embeddings().weight.numel()
        params = sum(p.numel() for p in backbone.parameters()) - emb  # lookups cost no FLOPs
        achieved = 2.0 * params * st.n_tokens / st.seconds
        cfg = loaded.model.config
        inner = getattr(cfg, "intermediate_size", 4 * cfg.hidden_size)
        rows = min(st.n_padded_tokens, args.batch_size * 32)
        peak = matmul_flops(rows, cfg.hidden_size, inner, loaded.dtype)
        fig = {
            "model": name, "model_id": loaded.model_id, "dtype": str(loaded.dtype).removeprefix("torch."),
            "threads": args.threads, "texts": st.n_texts, "batch_size": args.batch_size,
            "load_s": round(load_s, 2), "seconds": round(st.seconds, 2),
            "items_per_s": round(st.n_texts / st.seconds, 1),
            "tokens_per_s": round(st.n_tokens / st.seconds, 1),
            "tokens_per_item": round(st.n_tokens / st.n_texts, 1),
            "padding_overhead": round(st.n_padded_tokens / st.n_tokens - 1, 3),
            "params_non_embedding": params, "achieved_gflops": round(achieved / 1e9, 2),
            "matmul_gflops": round(peak / 1e9, 2), "fraction_of_matmul": round(achieved / peak, 3),
        }
        figures.append(fig)
        print(f"{name:13s} {fig['items_per_s']:7.1f} items/s {fig['tokens_per_s']:8.1f} tokens/s "
              f"({fig['tokens_per_item']} tok/item, padding +{fig['padding_overhead']:.0%}); "
              f"{fig['achieved_gflops']:.1f} GFLOP/s = {fig['fraction_of_matmul']:.0%} of a "
              f"[{rows}x{cfg.hidden_size}]@[{cfg.hidden_size}x{inner}] {fig['dtype']} matmul "
              f"({fig['matmul_gflops']:.1f} GFLOP/s); load {load_s:.1f} s")
        del enc, loaded
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
