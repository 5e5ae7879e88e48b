"""The SRS flow end to end on synthetic data, and its content-keyed cache."""

from __future__ import annotations

from pathlib import Path

import polars as pl


def test_srs_flow_trains_reports_and_caches(prefect_harness, tmp_path):
    from flows.srs import srs_flow

    kwargs = dict(dataset="synthetic", backbones=["pop", "sasrec"], seeds=[0],
                  overrides={"epochs": 2, "model.dim": 16, "model.max_len": 20},
                  data_dir=str(tmp_path / "data"), runs_dir=str(tmp_path / "runs"))
    first = pl.read_parquet(srs_flow(**kwargs))
    assert set(first["backbone"]) == {"pop", "sasrec"}
    assert set(first["protocol"]) == {"full", "s100"}
    assert first["value"].is_between(0, 1).all()
    ckpt = next(Path(tmp_path / "runs").rglob("last.pt"))
    stamp = ckpt.stat().st_mtime_ns

    second = pl.read_parquet(srs_flow(**kwargs))
    assert ckpt.stat().st_mtime_ns == stamp  # served from the task cache: no retraining
    assert second.drop("seed").equals(first.drop("seed"))
