"""LLMEmb stage 2, RAT: adapt the frozen SCFT vectors to recommendation (METHODS.md §4.4).

The SCFT vectors are PCA'd and frozen; a two-layer linear adapter maps them to the
backbone's dim and trains jointly with a SASRec on the next-item loss plus α times a
soft-target contrastive alignment (τ = 2, fixed) between the adapter's vector of an item
and the frozen `items/sasrec-id` teacher's vector of the same item. The adapted table,
adapter(PCA(SCFT)) for items 1..N, is written as `items/llmemb-rat`.

Which items are aligned each step: the paper takes the batch's target items (duplicates
included). `train_srs` hands its auxiliary loss the model but not the batch, so
`AlignmentLoss` draws the same number of ids from the *training* popularity instead, the
distribution those targets follow, duplicates included; it takes the batch's targets
directly when a caller passes one (`align(model, batch)`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from embeddings_store import EmbeddingStore, ManifestInput, Parent, Producer, VersionRef
from models.item_emb import FrozenAdapterEmbedding
from models.losses import AlignmentLoss
from pipeline import checkpoint
from pipeline.data.dataset import Dataset
from pipeline.errors import InputError
from pipeline.evaluate import pick
from pipeline.methods.llm_init.table import DEFAULT_PCA_DIM, item_embedding_from_store
from pipeline.methods.llmemb.config import RatConfig
from pipeline.split import Split
from pipeline.store_io import read_catalogue
from pipeline.train import build_model, train_srs

KIND = "items/llmemb-rat"
SCFT_KIND = "items/llmemb-scft"
TEACHER_KIND = "items/sasrec-id"


def run_rat(dataset: Dataset, split: Split, cfg: RatConfig, store: EmbeddingStore, run_dir: Path,
            resume: bool = False, scft_ref: str | VersionRef = SCFT_KIND,
            teacher_ref: str | VersionRef = TEACHER_KIND) -> tuple[np.ndarray, dict]:
    """Train RAT on split.train; returns (adapted vectors [N, D] of the best epoch, info)."""
    train_cfg = cfg.train_config()
    dim = train_cfg.model.dim
    scft, llm = read_catalogue(dataset, store, scft_ref)  # [N, H]
    teacher_v, teacher = read_catalogue(dataset, store, teacher_ref)  # [N, Dt]
    if teacher.shape[1] != dim:
        raise InputError(f"{teacher_v} has dim {teacher.shape[1]} but the {cfg.backbone} "
                         f"backbone has dim {dim}: retrain the teacher or set model.dim={teacher.shape[1]}")
    pca_dim = cfg.pca_dim or min(llm.shape[1], llm.shape[0], DEFAULT_PCA_DIM)
    item_emb = item_embedding_from_store(llm, "frozen_adapter", dim, pca_dim)
    assert isinstance(item_emb, FrozenAdapterEmbedding)
    teacher_t = torch.from_numpy(np.concatenate([np.zeros((1, dim), np.float32), teacher]))
    # Popularity of *training* items only: validation and test targets never shape RAT.
    align = AlignmentLoss(teacher_t, split.train_item_counts(), cfg.alpha, cfg.align_items,
                          cfg.tau, cfg.align_seed) if cfg.alpha > 0 else None
    result = train_srs(split, train_cfg, run_dir, resume=resume, item_emb=item_emb, aux_loss=align)
    model = build_model(train_cfg, split.n_items, item_emb)
    model.load_state_dict(checkpoint.load(run_dir / "best.pt")["model"])
    with torch.no_grad():
        vectors = item_emb.item_vectors().float().numpy()  # [N, D]
    info = {
        "scft": scft, "teacher": teacher_v, "pca_dim": int(item_emb.frozen.shape[1]),
        "train_config": train_cfg.model_dump(mode="json"),
        "valid_full_ndcg@10": pick(result.valid_rows), "test_full_ndcg@10": pick(result.test_rows),
        "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
        "train_seconds": result.train_seconds,
    }
    return vectors, info


def write_rat(dataset: Dataset, split: Split, cfg: RatConfig, store: EmbeddingStore, run_dir: Path,
              resume: bool = False, scft_ref: str | VersionRef = SCFT_KIND,
              teacher_ref: str | VersionRef = TEACHER_KIND) -> VersionRef:
    """Run RAT and write `items/llmemb-rat` (raw adapter outputs, inner-product metric)."""
    vectors, info = run_rat(dataset, split, cfg, store, run_dir, resume, scft_ref, teacher_ref)
    ids = np.arange(1, split.n_items + 1, dtype=np.int64)
    parents = [Parent(kind=info["scft"].kind, version=info["scft"].version),
               Parent(kind=info["teacher"].kind, version=info["teacher"].version)]
    manifest = ManifestInput(
        dataset_fingerprint=dataset.fingerprint,
        producer=Producer(generator="llmemb-rat", model_id=f"{cfg.backbone}-rat",
                          config={"rat": cfg.model_dump(mode="json"), "pca_dim": info["pca_dim"],
                                  "train": info["train_config"]}),
        metric="ip", parents=parents,
        metrics={k: info[k] for k in ("valid_full_ndcg@10", "test_full_ndcg@10", "best_epoch",
                                      "epochs_run", "train_seconds", "pca_dim")}
        | {"alpha": cfg.alpha, "tau": cfg.tau},
    )
    return store.write(dataset.name, KIND, ids, vectors, manifest, expected_ids=ids)
