"""RAT: what trains and what stays frozen, the store version, and the leakage guard."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from embeddings_store import EmbeddingStore, ManifestInput, Producer
from models.losses import AlignmentLoss
from pipeline.batches import next_item_batch
from pipeline.errors import InputError
from pipeline.methods.llmemb import rat
from pipeline.methods.llmemb.config import RatConfig
from pipeline.train import build_model

SMALL = {"model.dim": 16, "model.max_len": 20, "epochs": 2, "batch_size": 64, "patience": 2}


def _store(tmp_path, dataset, n, teacher_dim=16) -> EmbeddingStore:
    store = EmbeddingStore(tmp_path / "store")
    rng = np.random.default_rng(0)
    ids = np.arange(1, n + 1, dtype=np.int64)
    for kind, dim in (("items/llmemb-scft", 24), ("items/sasrec-id", teacher_dim)):
        store.write(dataset.name, kind, ids, rng.normal(size=(n, dim)).astype(np.float32),
                    ManifestInput(dataset_fingerprint=dataset.fingerprint,
                                  producer=Producer(generator="test"), metric="ip"),
                    expected_ids=ids)
    return store


def test_one_step_reaches_adapter_and_backbone_not_table_or_teacher(synthetic_split):
    from pipeline.methods.llm_init.table import item_embedding_from_store

    n = synthetic_split.n_items
    cfg = RatConfig(srs_overrides=SMALL)
    tcfg = cfg.train_config()
    emb = item_embedding_from_store(np.random.default_rng(0).normal(size=(n, 24)), "frozen_adapter", 16)
    model = build_model(tcfg, n, emb)
    teacher = torch.randn(n + 1, 16)
    align = AlignmentLoss(teacher, synthetic_split.train_item_counts(), cfg.alpha,
                          cfg.align_items, cfg.tau, cfg.align_seed)
    gen = torch.Generator().manual_seed(0)
    batch = next_item_batch([s for s in synthetic_split.train[:32] if len(s) >= 2], 20, n, gen, False)
    loss = model.loss(batch) + align(model) + align(model, batch)
    loss.backward()
    assert torch.isfinite(loss)
    assert emb.adapter[0].weight.grad is not None and emb.adapter[1].weight.grad.abs().sum() > 0
    backbone = [p for name, p in model.named_parameters() if not name.startswith("item_emb.")]
    assert backbone and any(p.grad is not None and p.grad.abs().sum() > 0 for p in backbone)
    assert emb.frozen.grad is None and not emb.frozen.requires_grad
    assert align.teacher.grad is None and not align.teacher.requires_grad
    assert all(p is not emb.frozen for p in model.parameters())


def test_alignment_samples_training_items_only(synthetic_split):
    counts = synthetic_split.train_item_counts()
    align = AlignmentLoss(torch.zeros(len(counts), 16), counts, alpha=0.01, n=4096)
    ids = align.sample().numpy()
    assert ids.min() >= 1 and np.all(counts[ids] > 0)


def test_write_rat_end_to_end_on_split_train(synthetic_dataset, synthetic_split, tmp_path, monkeypatch):
    n = synthetic_split.n_items
    store = _store(tmp_path, synthetic_dataset, n)
    seen = {}
    real = rat.train_srs

    def spy(split, cfg, run_dir, **kw):
        seen["split"], seen["aux"] = split, kw["aux_loss"]
        return real(split, cfg, run_dir, **kw)

    monkeypatch.setattr(rat, "train_srs", spy)
    ref = rat.write_rat(synthetic_dataset, synthetic_split, RatConfig(srs_overrides=SMALL, pca_dim=8),
                        store, tmp_path / "run")
    # Leakage: train_srs fits on split.train; the aligned ids follow training popularity.
    assert seen["split"] is synthetic_split
    assert np.array_equal(seen["aux"].weights[1:].numpy(), synthetic_split.train_item_counts()[1:])
    _, vectors = store.read(ref)
    assert vectors.shape == (n, 16) and np.isfinite(vectors).all()
    manifest = json.loads((ref.path / "manifest.json").read_text())
    assert {p["kind"] for p in manifest["parents"]} == {"items/llmemb-scft", "items/sasrec-id"}
    metrics = manifest["metrics"]
    assert metrics["pca_dim"] == 8 and metrics["alpha"] == 0.01 and metrics["tau"] == 2.0
    assert 0 <= metrics["valid_full_ndcg@10"] <= 1 and 0 <= metrics["test_full_ndcg@10"] <= 1


def test_teacher_dim_must_match_the_backbone(synthetic_dataset, synthetic_split, tmp_path):
    store = _store(tmp_path, synthetic_dataset, synthetic_split.n_items, teacher_dim=8)
    with pytest.raises(InputError, match="dim 8"):
        rat.run_rat(synthetic_dataset, synthetic_split, RatConfig(srs_overrides=SMALL), store, tmp_path / "r")
