"""One validation pass of an untrained backbone: per-window padding against max_len padding.

    .venv/bin/python bench/eval_speed.py                               # ML-100k, SASRec
    .venv/bin/python bench/eval_speed.py --dataset amazon-scientific --backbones sasrec,gru4rec

The evaluation pads each history to its window (models.sequences.window_len: the power of
two above its length, at most max_len) and batches users of one window together. This
prints, per backbone, the median wall and CPU seconds of a validation pass that way and with
every history padded to max_len (the evaluation before), their ratio, how many users' ranks
moved (float-level differences swap near-tied scores) and both full NDCG@10. Prints only; the last line is a JSON list of the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from models.item_emb import IdEmbedding
from models.sequences import pad_left
from models.srs import BACKBONES
from pipeline.config import load_train_config
from pipeline.data.config import resolve_dataset
from pipeline.data.prepare import prepare_dataset
from pipeline.evaluate import rank_users
from pipeline.split import leave_one_out
from pipeline.train import model_scorer


def _timed(fn, repeats: int) -> tuple[float, float, dict]:
    """(median wall s, median CPU s, last result) of `repeats` calls."""
    walls, cpus, out = [], [], {}
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="movielens-100k")
    ap.add_argument("--backbones", default="sasrec")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    split = leave_one_out(prepare_dataset(resolve_dataset(args.dataset), Path("data")))
    lengths = np.array([len(s) for s in split.inputs("valid")])
    figures = []
    for backbone in args.backbones.split(","):
        cfg = load_train_config(backbone)
        torch.manual_seed(0)
        model = BACKBONES[backbone](cfg.model, IdEmbedding(split.n_items, cfg.model.dim)).eval()

        def fixed(users, inputs, model=model, t=cfg.model.max_len):  # the evaluation before
            return model.score_all(model(pad_left(inputs, t))).float()

        windowed = model_scorer(model)
        w_wall, w_cpu, w_ranks = _timed(
            lambda: rank_users(windowed, split, "valid", cfg.eval), args.repeats)
        f_wall, f_cpu, f_ranks = _timed(
            lambda: rank_users(fixed, split, "valid", cfg.eval), args.repeats)
        # Float-level differences (other kernel shapes) can swap near-tied scores: count the
        # users whose full rank moved, and compare the metric itself.
        moved = int((w_ranks["full"] != f_ranks["full"]).sum())
        ndcg = {name: float(np.where(r["full"] < 10, 1 / np.log2(r["full"] + 2), 0).mean())
                for name, r in (("window", w_ranks), ("fixed", f_ranks))}
        fig = {"dataset": args.dataset, "backbone": backbone, "max_len": cfg.model.max_len,
               "users": int(len(lengths)), "median_history": float(np.median(lengths)),
               "threads": args.threads, "fixed_wall_s": round(f_wall, 3),
               "window_wall_s": round(w_wall, 3), "fixed_cpu_s": round(f_cpu, 3),
               "window_cpu_s": round(w_cpu, 3),
               "cpu_speedup": round(f_cpu / max(w_cpu, 1e-9), 2), "users_rank_moved": moved,
               "window_full_ndcg@10": round(ndcg["window"], 6),
               "fixed_full_ndcg@10": round(ndcg["fixed"], 6)}
        figures.append(fig)
        print(f"{backbone:9s} validation pass ({len(lengths)} users, median history "
              f"{fig['median_history']:.0f}, max_len {cfg.model.max_len}): max_len padding "
              f"{f_wall:.2f} s wall / {f_cpu:.2f} s CPU, per window {w_wall:.2f} / {w_cpu:.2f} "
              f"-> {fig['cpu_speedup']}x less CPU; full rank moved for {moved} users, full "
              f"NDCG@10 {ndcg['window']:.6f} vs {ndcg['fixed']:.6f}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
