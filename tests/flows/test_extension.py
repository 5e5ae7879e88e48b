"""Extending takes one place: a backbone and a stage-1 generator registered from inside this
test module (no package file edited) run through the real CLI and its flows."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from torch import nn

from llm4srs.cli import main


def run_cli(args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["llm4srs", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def _toy_backbone():
    from models.srs import SequentialRecommender, register_backbone

    class MeanPoolRec(SequentialRecommender):
        objective = "next"

        def __init__(self, cfg, item_emb) -> None:
            super().__init__(cfg, item_emb)
            self.mix = nn.Linear(cfg.dim, cfg.dim)

        def encode_vectors(self, x: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
            real = (seq > 0).unsqueeze(-1).float()  # [B, T, 1]
            running = (x * real).cumsum(1) / real.cumsum(1).clamp(min=1)  # [B, T, D]
            return self.mix(running)

    return register_backbone("meanpool", MeanPoolRec)


def test_a_backbone_registered_here_trains_through_the_cli(prefect_harness, tmp_path,
                                                           monkeypatch, capsys):
    from models.srs import BACKBONES

    _toy_backbone()
    try:
        code, out, err = run_cli([
            "train", "--dataset", "synthetic", "--backbone", "meanpool", "--seeds", "0",
            "--set", "epochs=2", "--set", "model.dim=16", "--set", "model.max_len=20",
            "--data-dir", str(tmp_path / "data"), "--runs-dir", str(tmp_path / "runs"),
            "--json"], monkeypatch, capsys)
    finally:
        BACKBONES.pop("meanpool", None)
    assert code == 0, err
    rows = json.loads(out)
    assert {r["backbone"] for r in rows} == {"meanpool"} and {r["method"] for r in rows} == {"id"}
    ndcg = [r["value"] for r in rows if (r["protocol"], r["group"], r["metric"])
            == ("full", "overall", "ndcg@10")]
    assert len(ndcg) == 1 and 0 < ndcg[0] <= 1
    assert list((tmp_path / "runs" / "synthetic").glob("meanpool-id-*-s0/best.pt"))


class ItemIdGenerator:
    """A toy stage-1 generator: each item's vector is a seeded random projection of its id."""

    name = "toy-ids"
    kinds = ("items/toy-ids",)
    needs = ()
    needs_text = False
    uses_llm = False
    summary = "seeded random vectors per item (a test's generator)"

    def load_config(self, overrides, llm):
        from pydantic import BaseModel, ConfigDict

        class ToyConfig(BaseModel):
            model_config = ConfigDict(extra="forbid")
            dim: int = 8
            seed: int = 0

        from pipeline.presets import validate

        return validate(ToyConfig, overrides, "toy-ids config")

    def write(self, ctx):
        from embeddings_store import ManifestInput, Producer

        n = ctx.dataset.n_items
        ids = np.arange(1, n + 1, dtype=np.int64)
        vectors = np.random.default_rng(ctx.config.seed).normal(
            size=(n, ctx.config.dim)).astype(np.float32)
        manifest = ManifestInput(dataset_fingerprint=ctx.dataset.fingerprint,
                                 producer=Producer(generator=self.name,
                                                   config=ctx.config.model_dump()),
                                 metric="ip")
        ref = ctx.store.write(ctx.dataset.name, self.kinds[0], ids, vectors, manifest,
                              expected_ids=ids)
        return {ref.kind: str(ref)}


def test_a_generator_registered_here_writes_through_embed(prefect_harness, tmp_path,
                                                         monkeypatch, capsys):
    from embeddings_store import EmbeddingStore
    from pipeline.methods.registry import GENERATORS, register_generator

    register_generator(ItemIdGenerator())
    try:
        args = ["embed", "toy-ids", "--dataset", "synthetic", "--store", str(tmp_path / "store"),
                "--data-dir", str(tmp_path / "data"), "--runs-dir", str(tmp_path / "runs"),
                "--json"]
        code, out, err = run_cli(args, monkeypatch, capsys)
        assert code == 0, err
        refs = json.loads(out)
        assert list(refs) == ["items/toy-ids"]
        store = EmbeddingStore(tmp_path / "store")
        ids, vectors = store.read(store.resolve(refs["items/toy-ids"]))
        assert vectors.shape == (len(ids), 8) and np.isfinite(vectors).all()
        assert store.manifest(store.resolve(refs["items/toy-ids"])).producer.generator == "toy-ids"
        again = run_cli(args, monkeypatch, capsys)
        assert again[0] == 0 and json.loads(again[1]) == refs  # cached on content
    finally:
        GENERATORS.pop("toy-ids", None)
