"""The SRS flow end to end on synthetic data, and its content-keyed cache."""

from __future__ import annotations

from pathlib import Path

import polars as pl


def test_srs_flow_trains_reports_and_caches(prefect_harness, tmp_path):
    from flows.srs import srs_flow
    from pipeline.requests import TrainRequest

    kwargs = dict(dataset="synthetic", backbones=["pop", "sasrec"], seeds=[0],
                  overrides={"epochs": 2, "model.dim": 16, "model.max_len": 20},
                  data_dir=str(tmp_path / "data"), runs_dir=str(tmp_path / "runs"))
    out = Path(srs_flow(TrainRequest(**kwargs)))
    first = pl.read_parquet(out)
    png = out.with_suffix(".png").read_bytes()  # the head/tail plot beside the table
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert set(first["backbone"]) == {"pop", "sasrec"}
    assert set(first["protocol"]) == {"full", "s100"}
    assert first["value"].is_between(0, 1).all()
    _check_html(out.with_suffix(".html"), first)
    ckpt = next(Path(tmp_path / "runs").rglob("last.pt"))
    stamp = ckpt.stat().st_mtime_ns

    second = pl.read_parquet(srs_flow(TrainRequest(**kwargs)))
    assert ckpt.stat().st_mtime_ns == stamp  # served from the task cache: no retraining
    assert second.drop("seed").equals(first.drop("seed"))

    # The run folder deleted: the cached rows would cite checkpoints that are gone, so the
    # run trains again (same numbers) instead of answering from the cache.
    import shutil

    shutil.rmtree(ckpt.parent)
    third = pl.read_parquet(srs_flow(TrainRequest(**kwargs)))
    assert ckpt.is_file()
    assert third.drop("seed", "train_seconds").equals(first.drop("seed", "train_seconds"))


def test_srs_flow_consumes_a_store_embedding(prefect_harness, tmp_path, synthetic_dataset):
    import numpy as np

    from embeddings_store import EmbeddingStore, ManifestInput, Producer
    from flows.srs import srs_flow
    from pipeline.requests import TrainRequest

    n = synthetic_dataset.n_items
    store = EmbeddingStore(tmp_path / "store")
    ids = np.arange(1, n + 1)
    vecs = np.random.default_rng(0).normal(size=(n, 24)).astype(np.float32)
    store.write(synthetic_dataset.name, "items/random", ids, vecs,
                ManifestInput(dataset_fingerprint=synthetic_dataset.fingerprint,
                              producer=Producer(generator="test")))
    rows = []
    for mode in ("init", "frozen_adapter"):
        out = srs_flow(TrainRequest(
            dataset="synthetic", backbones=["sasrec"], seeds=[0],
            overrides={"epochs": 1, "model.dim": 16, "model.max_len": 20},
            data_dir=str(tmp_path / "data"), runs_dir=str(tmp_path / "runs"),
            embedding="items/random", embedding_mode=mode, store_root=str(tmp_path / "store")))
        rows.append(pl.read_parquet(out))
    assert set(rows[0]["method"]) == {"llm-init"} and set(rows[1]["method"]) == {"llm-frozen_adapter"}
    assert rows[0]["embedding"][0].startswith("synthetic/items/random@v")


def _check_html(page: Path, rows: pl.DataFrame) -> None:
    """The self-contained report: the table's numbers, the plot inline, the configs; nothing
    fetched from the network."""
    import base64
    import json
    import re
    from html.parser import HTMLParser

    text = page.read_text()
    assert "http://" not in text and "https://" not in text and "<script" not in text

    class Cells(HTMLParser):
        def __init__(self):
            super().__init__()
            self.cells, self.imgs, self.pres, self._in = [], [], [], None

        def handle_starttag(self, tag, attrs):
            self._in = tag
            if tag == "img":
                self.imgs.append(dict(attrs)["src"])

        def handle_endtag(self, tag):
            self._in = None

        def handle_data(self, data):
            if self._in == "td":
                self.cells.append(data)
            elif self._in == "pre":
                self.pres.append(data)

    p = Cells()
    p.feed(text)
    png = base64.b64decode(p.imgs[0].split(",", 1)[1])
    assert p.imgs[0].startswith("data:image/png;base64,") and png[:8] == b"\x89PNG\r\n\x1a\n"
    sasrec = rows.filter(pl.col("backbone") == "sasrec", pl.col("protocol") == "full",
                         pl.col("group") == "overall", pl.col("metric") == "ndcg@10")
    assert f"{round(sasrec['value'][0], 4)} ± 0.0" in p.cells  # one seed: std 0
    configs = [json.loads(t) for t in p.pres]
    assert {c["backbone"] for c in configs} == {"pop", "sasrec"} and configs[1]["epochs"] == 2
    assert re.search(r"synthetic \([0-9a-f]{16}\)", text)
