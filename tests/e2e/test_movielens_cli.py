"""End to end on the real MovieLens-100k through the installed CLI.

Fetches the recbole wheel from PyPI on first use (cached in data/), runs the Prefect flow
embedded, and checks the popularity baseline against an independent computation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_pop_baseline_on_movielens_matches_independent_count(tmp_path):
    cli = Path(sys.executable).parent / "llm4srs"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")}
    proc = subprocess.run(
        [str(cli), "train", "--dataset", "movielens-100k", "--backbone", "pop", "--json",
         "--data-dir", str(ROOT / "data"), "--runs-dir", str(tmp_path / "runs")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout)  # stdout holds the JSON list and nothing else
    got = {(r["protocol"], r["group"], r["metric"]): r["value"] for r in rows}
    assert rows[0]["dataset"] == "movielens-100k" and len({r["n_users"] for r in rows
                                                           if r["group"] == "overall"}) == 1

    prepared = next((ROOT / "data" / "prepared").glob("movielens-100k-*"))
    inter = pl.read_parquet(prepared / "interactions.parquet")
    assert inter.height == 100_000 and inter["user_id"].n_unique() == 943
    seqs = [g["item_id"].to_numpy() for _, g in inter.group_by("user_id", maintain_order=True)]
    n_items = int(inter["item_id"].max())
    pop = np.bincount(np.concatenate([s[:-2] for s in seqs]), minlength=n_items + 1)
    ndcg = []
    for s in seqs:
        target, history = s[-1], s[:-1]
        competitors = np.ones(n_items + 1, dtype=bool)
        competitors[[0, target, *history]] = False
        rank = int((pop[competitors] >= pop[target]).sum())
        ndcg.append(1 / np.log2(rank + 2) if rank < 10 else 0.0)
    assert got[("full", "overall", "ndcg@10")] == pytest.approx(float(np.mean(ndcg)), abs=1e-9)
