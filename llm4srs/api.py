"""The Python API for downstream jobs: stored item tables and trained runs, without Prefect.

    from llm4srs import api

    table = api.item_table("store", "movielens-100k/items/llmemb-rat@production")
    table.vectors            # [N, D] float32, row i-1 <-> item id i
    table.embedding()        # nn.Embedding.from_pretrained, row 0 = padding (zeros)
    table.rows(["50", "172"])            # raw ids -> rows
    table.neighbours("50", k=5)          # raw ids of the nearest items (the store's index)

    run = api.load_run("runs/movielens-100k/sasrec-llmemb-rat-init-…-s0")
    run.recommend(["50", "172", "181"], k=10)   # [{rank, item, title, score}]
    run.score_all([[12, 7, 3]])                 # [B, N+1] scores over internal ids

Nothing here imports Prefect; the store and run formats are those of DESIGN.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embeddings_store import EmbeddingStore, VersionRef
from pipeline.data.dataset import Dataset, read_meta
from pipeline.errors import InputError
from pipeline.recommend import TrainedRun, item_ids, raw_ids


def open_store(root: str | Path = "store") -> EmbeddingStore:
    return EmbeddingStore(Path(root))


def load_run(folder: str | Path) -> TrainedRun:
    """A trained stage-2 run (`runs/<dataset>/<run>`), ready to score and recommend."""
    return TrainedRun.load(Path(folder))


def find_dataset(fingerprint: str, data_dir: str | Path = "data") -> Dataset:
    """The prepared dataset with this fingerprint under `data_dir/prepared`."""
    prepared = Path(data_dir) / "prepared"
    for folder in sorted(prepared.glob("*/")) if prepared.is_dir() else []:
        if (folder / "meta.json").is_file() and read_meta(folder)["fingerprint"] == fingerprint:
            return Dataset.load(folder)
    raise InputError(f"no prepared dataset with fingerprint {fingerprint} under {prepared} "
                     "(run `llm4srs prepare` for it)")


@dataclass
class ItemTable:
    """One stored item kind for a dataset, as rows in item-id order (row i-1 <-> item i)."""

    ref: VersionRef
    vectors: np.ndarray  # [N, D] float32
    dataset: Dataset
    store: EmbeddingStore

    def tensor(self):
        import torch

        return torch.from_numpy(np.ascontiguousarray(self.vectors))  # [N, D]

    def embedding(self, freeze: bool = True):
        """nn.Embedding over ids 0..N: row 0 the padding (zeros), row i item i — the id
        layout every SRS here uses."""
        import torch

        table = torch.cat([torch.zeros(1, self.vectors.shape[1]), self.tensor()])  # [N+1, D]
        return torch.nn.Embedding.from_pretrained(table, freeze=freeze, padding_idx=0)

    def rows(self, raw: list[str]) -> np.ndarray:
        """Rows (0-based, = item id - 1) of raw item ids; unknown ids: one InputError."""
        return np.array(item_ids(self.dataset, raw), dtype=np.int64) - 1

    def raw_ids(self, rows: np.ndarray) -> list[str]:
        raw = raw_ids(self.dataset)
        return [raw[int(r)] for r in np.asarray(rows).ravel()]

    def neighbours(self, raw_id: str, k: int = 10) -> list[tuple[str, float]]:
        """The k nearest items to one item (its own row left out), through the version's
        FAISS index (exact when it has none): [(raw id, score)], nearest first."""
        row = self.rows([raw_id])[0]
        ids, scores = self.store.open_index(self.ref).search(self.vectors[row], k + 1)
        out = [(i, s) for i, s in zip(ids[0].tolist(), scores[0].tolist(), strict=True)
               if i != row + 1 and i > 0]
        return [(self.raw_ids(np.array([i - 1]))[0], float(s)) for i, s in out[:k]]


def item_table(store: str | Path | EmbeddingStore, ref: str,
               data_dir: str | Path = "data") -> ItemTable:
    """Read a stored item kind (`dataset/items/name[@version|@tag]`) with the prepared
    dataset it was made from (found by fingerprint under `data_dir`)."""
    from pipeline.store_io import read_catalogue

    store = store if isinstance(store, EmbeddingStore) else open_store(store)
    version = store.resolve(ref)
    dataset = find_dataset(store.manifest(version).dataset.fingerprint, data_dir)
    version, vectors = read_catalogue(dataset, store, version)
    return ItemTable(version, vectors, dataset, store)
