"""LLM-ESR through the SRS flow: result columns, variant names, run folders, cache keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl


def test_srs_flow_runs_llmesr_and_its_variants(prefect_harness, tmp_path, synthetic_dataset):
    from embeddings_store import EmbeddingStore, ManifestInput, Producer
    from flows.srs import srs_flow
    from pipeline.requests import TrainRequest

    ds = synthetic_dataset
    store = EmbeddingStore(tmp_path / "store")
    rng = np.random.default_rng(0)
    for kind, n in (("items/random", ds.n_items), ("users/random", ds.n_users)):
        store.write(ds.name, kind, np.arange(1, n + 1), rng.normal(size=(n, 24)).astype(np.float32),
                    ManifestInput(dataset_fingerprint=ds.fingerprint,
                                  producer=Producer(generator="test", config={"history": "train"})))
    runs = tmp_path / "runs"
    common = dict(dataset="synthetic", backbones=["sasrec"], seeds=[0],
                  data_dir=str(tmp_path / "data"), runs_dir=str(runs),
                  embedding="items/random", store_root=str(tmp_path / "store"))
    tiny = {"epochs": 1, "model.dim": 16, "model.max_len": 20}

    full = pl.read_parquet(srs_flow(TrainRequest(**common, overrides=tiny, method="llmesr",
                                    user_embedding="users/random")))
    assert set(full["method"]) == {"llmesr"}
    assert full["embedding"][0].startswith("synthetic/items/random@v")
    assert full["user_embedding"][0].startswith("synthetic/users/random@v")
    assert full["value"].is_between(0, 1).all()
    ckpt = next(runs.rglob("sasrec-llmesr-random-random-*/last.pt"))
    assert (ckpt.parent / "neighbours.npy").is_file()

    off = pl.read_parquet(srs_flow(TrainRequest(**common, overrides={**tiny, "llmesr.distill_weight": 0},
                                   method="llmesr", user_embedding="users/random")))
    assert set(off["method"]) == {"llmesr(distill_weight=0.0)"}
    assert off["user_embedding"].is_null().all()
    assert len(list(runs.rglob("sasrec-llmesr-*/last.pt"))) == 2  # one folder per variant

    # Same overrides and items, plain SRS: a different cache entry, not LLM-ESR's rows.
    plain = pl.read_parquet(srs_flow(TrainRequest(**common, overrides=tiny)))
    assert set(plain["method"]) == {"llm-init"} and plain["user_embedding"].is_null().all()

    stamp = ckpt.stat().st_mtime_ns
    again = pl.read_parquet(srs_flow(TrainRequest(**common, overrides=tiny, method="llmesr",
                                     user_embedding="users/random")))
    assert ckpt.stat().st_mtime_ns == stamp  # served from the task cache
    assert again.drop("seed").equals(full.drop("seed"))
    assert Path(ckpt).parent.name != next(runs.rglob("sasrec-items-random-init-*")).name
