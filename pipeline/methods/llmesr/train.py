"""LLM-ESR as a stage-2 method: store tables → dual-view model → train_srs (+ RASD).

The semantic view's frozen table is the store's item vectors as they are (e.g. 576-d
SmolLM2), centred and scaled to unit mean row norm — a reparametrisation a linear adapter
with bias absorbs exactly — behind a P → P/2 → d adapter whose output starts at the
ID table's scale (std d^-½), so neither view drowns the other's logits at step 0. The
collaborative view is an ID table initialised from the PCA of the same vectors
(pipeline.methods.llm_init.table: PCA to d, std d^-½), or randomly (`llmesr.id_init=random`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from embeddings_store import EmbeddingStore
from models.item_emb import FrozenAdapterEmbedding, IdEmbedding, ItemEmbedding
from models.losses import RASDLoss
from models.srs.llmesr import LLMESR
from pipeline.config import TrainConfig
from pipeline.data.dataset import Dataset
from pipeline.errors import InputError
from pipeline.methods.llm_init.table import item_embedding_from_store, read_item_vectors
from pipeline.methods.llmesr.distill import neighbours_for_run
from pipeline.split import Split
from pipeline.train import RunResult, train_srs


def semantic_view(vectors: np.ndarray, dim: int, hidden: int | None = None) -> FrozenAdapterEmbedding:
    """vectors [N, P] (row i-1 ↔ item i) -> frozen table (a buffer) + trainable adapter."""
    x = np.asarray(vectors, dtype=np.float64)
    x = x - x.mean(axis=0)
    x /= max(float(np.linalg.norm(x, axis=1).mean()), 1e-12)
    table = torch.from_numpy(x.astype(np.float32))  # [N, P]
    emb = FrozenAdapterEmbedding(table, dim, hidden=hidden or max(table.shape[1] // 2, 1))
    with torch.no_grad():
        for layer in emb.adapter:
            layer.bias.zero_()
        out = emb.item_vectors()  # [N, d]
        emb.adapter[-1].weight.mul_(dim**-0.5 / out.std().clamp_min(1e-12))
    return emb


def collaborative_view(vectors: np.ndarray, dim: int, init: str) -> ItemEmbedding:
    """A trainable ID table [N+2, d]: PCA of the LLM vectors ("pca") or random ("random")."""
    if init == "pca":
        return item_embedding_from_store(vectors, "init", dim)
    return IdEmbedding(len(vectors), dim)


def build_llmesr(cfg: TrainConfig, vectors: np.ndarray,
                 id_vectors: np.ndarray | None = None) -> LLMESR:
    """The dual-view model of cfg.llmesr over cfg.model's backbone, from item vectors [N, P]
    (the semantic view; and the ID view's PCA initialisation unless `id_vectors` [N, Q],
    another kind's table, is given: llmesr.id_from)."""
    esr, dim = cfg.llmesr, cfg.model.dim
    if cfg.backbone == "pop":
        raise InputError("LLM-ESR needs a neural backbone (sasrec, gru4rec, bert4rec), not pop")
    n, p = vectors.shape
    if id_vectors is not None:
        n, p = id_vectors.shape
    if esr.views != "semantic" and esr.id_init == "pca" and dim > min(n, p):
        raise InputError(f"cannot PCA a [{n}, {p}] item table to the model dim {dim}")
    semantic = semantic_view(vectors, dim, esr.adapter_hidden) if esr.views != "collaborative" else None
    init_from = vectors if id_vectors is None else id_vectors
    collaborative = collaborative_view(init_from, dim, esr.id_init) if esr.views != "semantic" else None
    return LLMESR(cfg.model, esr, collaborative, semantic)


def train_llmesr(dataset: Dataset, split: Split, cfg: TrainConfig, store: EmbeddingStore,
                 items_ref: str, users_ref: str | None, run_dir: Path,
                 resume: bool = False, progress: bool = True,
                 on_epoch_end: Callable[[int, float], None] | None = None) -> RunResult:
    """Train and evaluate LLM-ESR; neighbours are retrieved once into run_dir.

    users_ref is needed when cfg.llmesr.distill_weight > 0 and ignored otherwise.
    """
    esr = cfg.llmesr
    vectors = read_item_vectors(dataset, store, items_ref)  # [N, P]
    id_vectors = read_item_vectors(dataset, store, esr.id_from) if esr.id_from else None
    aux = None
    if esr.distill_weight > 0:
        if users_ref is None:
            raise InputError("LLM-ESR's self-distillation needs a user embedding (users/…); "
                             "or set llmesr.distill_weight=0")
        neighbours = neighbours_for_run(store, users_ref, dataset, esr.retrieve_k, run_dir)
        aux = RASDLoss(split.train, neighbours, min(esr.n_neighbours, neighbours.shape[1]),
                       esr.distill_weight, cfg.model.max_len, teacher=esr.teacher,
                       refresh_every=esr.refresh_every)

    def epoch_end(epoch: int, loss: float) -> None:
        if aux is not None:
            aux.new_epoch(epoch, loss)
        if on_epoch_end is not None:
            on_epoch_end(epoch, loss)
    return train_srs(split, cfg, run_dir, resume=resume, progress=progress, aux_loss=aux,
                     on_epoch_end=epoch_end, model_fn=lambda: build_llmesr(cfg, vectors, id_vectors),
                     valid_tap=aux.observe if aux is not None and esr.teacher == "validation" else None)
