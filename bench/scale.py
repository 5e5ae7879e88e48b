"""Scale: SASRec training and evaluation as the catalogue grows, on the seeded `synthetic`
source (prints figures; never asserts).

    .venv/bin/python bench/scale.py                                  # 10k, 100k, 1M items × 200k users
    .venv/bin/python bench/scale.py --items 2000,20000 --users 5000  # a quick look

For each catalogue size and loss — `sampled` (model.loss=sampled, K=model.negatives
uniform negatives) always, `ce` (full softmax) where the memory guard lets it run and the
catalogue is at most --full-max items — one epoch of SASRec is trained with the project's
trainer (`pipeline.train.train_srs`, epochs=1) in a process of its own, so each row's peak
RSS is that run's alone. Evaluation is full ranking of a fixed sample of --eval-users users
(`eval.user_sample`; the rows carry the sample size and a 95% interval); `eval_s` is the
time of one such evaluation. A full softmax that would not fit prints the guard's refusal
and its predicted per-step memory instead.

How the seconds are split: the trainer evaluates validation after the epoch, then test and
validation once more at the end. `eval_s` = (end − end of epoch 1) / 2; `epoch_s` = the
time to the end of epoch 1 − eval_s (it includes the epoch's checkpoint write).

Printed: one line per row, the cost-growth exponents d log(epoch_s) / d log(n_items)
between sizes, and last one JSON list of rows {n_items, n_users, loss, epoch_s, eval_s,
peak_rss_mb, steps, ...}.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def synthetic_config(n_items: int, n_users: int):
    """The benchmark's catalogue: flat popularity inside 1,000-item categories and ~27
    events per user. Items nobody interacted with leave the prepared catalogue (~1.3% of a
    10^6 catalogue with 200k users), so the generator is asked for 1.5% more than n_items;
    the rows report the prepared catalogue's size."""
    from pipeline.data.config import DataConfig

    asked = n_items if n_items <= 100_000 else int(n_items * 1.015)
    return DataConfig(source="synthetic", name=f"scale-{n_items}-{n_users}",
                      synthetic={"users": n_users, "items": asked,
                                 "categories": max(8, n_items // 1000), "min_len": 10,
                                 "max_len": 60, "zipf": 0.3, "fast": 1, "seed": 0})


def prepare(n_items: int, n_users: int, data_dir: Path) -> dict:
    from pipeline.data.prepare import prepare_dataset

    start = time.perf_counter()
    ds = prepare_dataset(synthetic_config(n_items, n_users), data_dir)
    return {"n_items": ds.n_items, "n_users": ds.n_users, "prepare_s": time.perf_counter() - start}


def run_one(n_items: int, n_users: int, loss: str, args: argparse.Namespace) -> dict:
    """One epoch of SASRec with `loss` (in this process: its peak RSS is the row's)."""
    import torch

    from models.srs.base import loss_step_bytes
    from pipeline.config import load_train_config
    from pipeline.data.prepare import prepare_dataset
    from pipeline.errors import InputError
    from pipeline.evaluate import pick
    from pipeline.requests import check_step_memory
    from pipeline.split import leave_one_out
    from pipeline.train import train_srs

    ds = prepare_dataset(synthetic_config(n_items, n_users), Path(args.data_dir))
    cfg = load_train_config("sasrec", {
        "epochs": 1, "batch_size": args.batch_size, "model.max_len": 50, "model.loss": loss,
        "model.negatives": args.negatives, "eval.user_sample": args.eval_users,
        "threads": args.threads, "bf16": False})
    row = {"n_items": ds.n_items, "n_users": ds.n_users, "loss": loss,
           "negatives": args.negatives if loss == "sampled" else None,
           "batch_size": args.batch_size, "threads": args.threads,
           "predicted_step_gb": round(loss_step_bytes(cfg.model, cfg.batch_size, ds.n_items) / 2**30, 2)}
    try:
        check_step_memory(cfg, ds.n_items)
    except InputError as e:
        return row | {"refused": str(e)}
    if loss == "ce" and ds.n_items > args.full_max:
        return row | {"skipped": f"full softmax above --full-max {args.full_max} items"}
    split = leave_one_out(ds)
    marks: list[float] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = train_srs(split, cfg, Path(tmp) / "run", progress=False,
                           on_epoch_end=lambda epoch, _loss: marks.append(time.perf_counter()))
    end = time.perf_counter()
    eval_s = (end - marks[0]) / 2
    steps = math.ceil(sum(len(s) >= 2 for s in split.train) / cfg.batch_size)
    ndcg = next(r for r in result.test_rows
                if (r["protocol"], r["group"], r["metric"]) == ("full", "overall", "ndcg@10"))
    return row | {
        "epoch_s": round(marks[0] - start - eval_s, 1), "eval_s": round(eval_s, 1),
        "eval_users": ndcg["n_users"], "steps": steps,
        "s_per_1000_steps": round((marks[0] - start - eval_s) / steps * 1000, 1),
        "test_ndcg@10": round(pick(result.test_rows), 4), "test_ndcg@10_ci95": round(ndcg["ci95"], 4),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "torch_threads": torch.get_num_threads(),
    }


def child(args: argparse.Namespace, *extra: str) -> dict:
    """Run this script on one task in a fresh process; its last stdout line is JSON."""
    cmd = [sys.executable, __file__, *extra, "--users", str(args.users), "--data-dir", args.data_dir,
           "--negatives", str(args.negatives), "--batch-size", str(args.batch_size),
           "--eval-users", str(args.eval_users), "--threads", str(args.threads),
           "--full-max", str(args.full_max)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise SystemExit(f"error: {' '.join(extra)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def growth(rows: list[dict]) -> list[dict]:
    """Exponent b of epoch_s ∝ n_items^b between consecutive measured sizes, per loss."""
    out = []
    for loss in sorted({r["loss"] for r in rows}):
        timed = [r for r in rows if r["loss"] == loss and "epoch_s" in r]
        for a, b in itertools.pairwise(timed):
            out.append({"loss": loss, "from": a["n_items"], "to": b["n_items"],
                        "epoch_ratio": round(b["epoch_s"] / a["epoch_s"], 2),
                        "exponent": round(math.log(b["epoch_s"] / a["epoch_s"])
                                          / math.log(b["n_items"] / a["n_items"]), 3)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", default="10000,100000,1000000", help="comma list of catalogue sizes")
    ap.add_argument("--users", type=int, default=200_000)
    ap.add_argument("--losses", default="ce,sampled")
    ap.add_argument("--negatives", type=int, default=1000, help="model.negatives of `sampled`")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--eval-users", type=int, default=20_000, help="eval.user_sample")
    ap.add_argument("--full-max", type=int, default=10_000,
                    help="largest catalogue the full softmax trains on (its epoch grows linearly)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--data-dir", default=str(ROOT / ".cache" / "bench-scale"))
    ap.add_argument("--prepare", type=int, help=argparse.SUPPRESS)  # child: make one dataset
    ap.add_argument("--run", nargs=2, metavar=("ITEMS", "LOSS"), help=argparse.SUPPRESS)  # child
    args = ap.parse_args()
    if args.prepare:
        print(json.dumps(prepare(args.prepare, args.users, Path(args.data_dir))))
        return
    if args.run:
        print(json.dumps(run_one(int(args.run[0]), args.users, args.run[1], args)))
        return

    rows = []
    for n_items in (int(x) for x in args.items.split(",")):
        made = child(args, "--prepare", str(n_items))
        print(f"dataset {made['n_items']} items × {made['n_users']} users "
              f"(prepared in {made['prepare_s']:.0f} s)", flush=True)
        for loss in args.losses.split(","):
            row = child(args, "--run", str(n_items), loss)
            rows.append(row)
            if "epoch_s" in row:
                print(f"  {loss:8s} epoch {row['epoch_s']:8.1f} s ({row['steps']} steps, "
                      f"{row['s_per_1000_steps']} s/1000)  eval {row['eval_s']:7.1f} s "
                      f"({row['eval_users']} users)  peak RSS {row['peak_rss_mb']} MB  "
                      f"test NDCG@10 {row['test_ndcg@10']} ± {row['test_ndcg@10_ci95']}", flush=True)
            else:
                why = row.get("refused") or row.get("skipped")
                print(f"  {loss:8s} not run: {why} (predicted {row['predicted_step_gb']} GB per step)",
                      flush=True)
    for g in growth(rows):
        print(f"growth {g['loss']}: {g['from']} -> {g['to']} items: epoch × {g['epoch_ratio']} "
              f"(exponent {g['exponent']})")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
