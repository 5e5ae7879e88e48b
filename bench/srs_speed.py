"""Training speed of the ID-only backbones on MovieLens-100k (prints; never asserts).

    .venv/bin/python bench/srs_speed.py                 # 3 epochs per backbone + a full SASRec run
    .venv/bin/python bench/srs_speed.py --epochs 5 --no-full
    .venv/bin/python bench/srs_speed.py --backbones sasrec --no-full --llmesr store   # + LLM-ESR

Prints seconds per epoch and training sequences/s per backbone, then the wall time of a
full SASRec run to early stopping (configs/srs/sasrec.yaml) with its test metrics. With
`--llmesr STORE` (a store holding --items-kind and --users-kind for the dataset), also
LLM-ESR on SASRec with each RASD teacher (exact, cached, running, validation; --teachers) and
without distillation, each as a ratio to the ID-only SASRec epoch measured in the same run.
The last line is a JSON list of the figures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from pipeline.config import load_train_config
from pipeline.data.config import resolve_dataset
from pipeline.data.prepare import prepare_dataset
from pipeline.evaluate import pick
from pipeline.split import leave_one_out
from pipeline.train import train_srs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="movielens-100k")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--backbones", default="sasrec,gru4rec,bert4rec")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--no-full", action="store_true", help="skip the full SASRec run")
    ap.add_argument("--llmesr", metavar="STORE", help="also time LLM-ESR-SASRec from this store")
    ap.add_argument("--items-kind", default="items/semantic-smollm2")
    ap.add_argument("--users-kind", default="users/semantic-smollm2")
    ap.add_argument("--teachers", default="exact,cached,running,validation,no-distill",
                    help="LLM-ESR variants to time (comma list)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ds = prepare_dataset(resolve_dataset(args.dataset), Path("data"))
    split = leave_one_out(ds)
    n_seqs = sum(len(s) >= 2 for s in split.train)
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        for backbone in args.backbones.split(","):
            cfg = load_train_config(backbone, {"epochs": args.epochs, "patience": 10**6})
            clock = EpochClock()
            r = train_srs(split, cfg, Path(tmp) / backbone, progress=False, on_epoch_end=clock)
            per_epoch = r.train_seconds / r.epochs_run
            rows_per_epoch = n_seqs * (2 if backbone == "bert4rec" else 1)
            fig = {"backbone": backbone, "threads": args.threads, "epochs": r.epochs_run,
                   "seconds_per_epoch": round(per_epoch, 2),
                   "median_cpu_seconds_per_epoch": round(clock.cpu(), 2),
                   "sequences_per_s": round(rows_per_epoch / per_epoch, 1)}
            figures.append(fig)
            print(f"{backbone:9s} {per_epoch:6.2f} s/epoch  {fig['sequences_per_s']:8.1f} sequences/s"
                  f"  ({args.threads} threads, epoch includes validation)")
        if args.llmesr:
            figures += _llmesr_ratios(ds, split, args, Path(tmp), figures)
        if not args.no_full:
            cfg = load_train_config("sasrec")
            start = time.perf_counter()
            r = train_srs(split, cfg, Path(tmp) / "full", progress=False)
            wall = time.perf_counter() - start
            fig = {"backbone": "sasrec", "run": "full", "wall_seconds": round(wall, 1),
                   "epochs": r.epochs_run, "best_epoch": r.best_epoch,
                   "test_full_ndcg@10": round(pick(r.test_rows), 4),
                   "test_full_hr@10": round(pick(r.test_rows, metric="hr@10"), 4)}
            figures.append(fig)
            print(f"full SASRec run to early stopping: {wall:.1f} s, {r.epochs_run} epochs "
                  f"(best {r.best_epoch}), test full NDCG@10 {fig['test_full_ndcg@10']}, "
                  f"HR@10 {fig['test_full_hr@10']}")
    print(json.dumps(figures))


class EpochClock:
    """train_srs's on_epoch_end: wall and CPU seconds of each epoch from its construction on
    (epoch 1 includes building the model). CPU time is this process's, all its threads:
    unlike wall time it does not grow while other jobs hold the cores, so ratios of it hold
    on a shared machine (cache and memory-bandwidth contention still show)."""

    def __init__(self) -> None:
        self.marks = [(time.perf_counter(), time.process_time())]

    def __call__(self, epoch: int, loss: float) -> None:
        self.marks.append((time.perf_counter(), time.process_time()))

    def _median(self, i: int) -> float:
        return statistics.median(b[i] - a[i] for a, b in itertools.pairwise(self.marks))

    def wall(self) -> float:
        return self._median(0)

    def cpu(self) -> float:
        return self._median(1)


# LLM-ESR variants timed by --llmesr: RASD's teachers (models/losses/rasd.py) and none.
LLMESR_VARIANTS = {"exact": {"llmesr.teacher": "exact"},
                   "cached": {"llmesr.teacher": "cached"},
                   "running": {"llmesr.teacher": "running"},
                   "validation": {"llmesr.teacher": "validation"},
                   "no-distill": {"llmesr.distill_weight": 0.0}}


def _llmesr_ratios(ds, split, args, tmp: Path, figures: list[dict]) -> list[dict]:
    """LLM-ESR-SASRec epochs (--teachers, each a LLMESR_VARIANTS entry) against the ID-only
    SASRec epoch (the same preset, epochs and threads), timed again after them: the base is
    the mean of the two, so a load that changed while the variants ran shows as drift.
    Ratios of median epochs, in CPU time (the headline: robust to other jobs) and in wall
    time, and of the mean wall epoch (one-off passes, e.g. a cache's first fill, included)."""
    from embeddings_store import EmbeddingStore
    from pipeline.methods.llmesr.train import train_llmesr

    before = next((f for f in figures if f["backbone"] == "sasrec"), None)
    if before is None:
        raise SystemExit("error: --llmesr needs sasrec among --backbones (the ratio's base)")
    for name in args.teachers.split(","):
        if name not in LLMESR_VARIANTS:
            raise SystemExit(f"error: --teachers: unknown {name!r}; choose from {', '.join(LLMESR_VARIANTS)}")
    timed = []
    for name in args.teachers.split(","):
        cfg = load_train_config("sasrec", {"epochs": args.epochs, "patience": 10**6,
                                           **LLMESR_VARIANTS[name]}, method="llmesr")
        clock = EpochClock()
        r = train_llmesr(ds, split, cfg, EmbeddingStore(args.llmesr), args.items_kind,
                         args.users_kind, tmp / f"llmesr-{name}", progress=False, on_epoch_end=clock)
        timed.append((name, r.train_seconds / r.epochs_run, clock))
    cfg = load_train_config("sasrec", {"epochs": args.epochs, "patience": 10**6})
    clock = EpochClock()
    again = train_srs(split, cfg, tmp / "sasrec-after", progress=False, on_epoch_end=clock)
    after, after_cpu = again.train_seconds / again.epochs_run, clock.cpu()
    base = (before["seconds_per_epoch"] + after) / 2
    base_cpu = (before["median_cpu_seconds_per_epoch"] + after_cpu) / 2
    print(f"ID-only SASRec again: {after:6.2f} s/epoch (before {before['seconds_per_epoch']:.2f}: "
          f"wall drift {after / before['seconds_per_epoch'] - 1:+.0%}); median CPU s/epoch "
          f"{after_cpu:.2f} (before {before['median_cpu_seconds_per_epoch']:.2f}); base: the means")
    out = [{"backbone": "sasrec", "method": "id", "run": "after", "seconds_per_epoch": round(after, 2),
            "median_cpu_seconds_per_epoch": round(after_cpu, 2)}]
    for name, mean, clock in timed:
        cpu, wall = clock.cpu() / base_cpu, clock.wall() / base
        out.append({"backbone": "sasrec", "method": f"llmesr-{name}", "threads": args.threads,
                    "epochs": args.epochs, "seconds_per_epoch": round(mean, 2),
                    "cpu_ratio_to_id": round(cpu, 2), "median_wall_ratio_to_id": round(wall, 2),
                    "mean_wall_ratio_to_id": round(mean / base, 2)})
        print(f"llmesr ({name:10s}) {cpu:5.2f}× the ID-only SASRec epoch in CPU time "
              f"(median epoch; wall: median {wall:.2f}×, mean {mean / base:.2f}×, {mean:.2f} s)")
    return out


if __name__ == "__main__":
    main()
