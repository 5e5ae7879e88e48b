"""LLM-ESR's retrieval-augmented self-distillation (RASD, METHODS.md §3.4).

1. `retrieve_neighbours`: each user's top-k most similar *other* users by cosine over an
   LLM user embedding of the training-period history (a `users/*` store kind), searched
   once through the version's FAISS index, batched; never a dense user × user matrix.
2. `RASDLoss`: an auxiliary loss for `train_srs`. For the batch's users it runs the same
   model (training mode, dropout on) on the first n neighbours' training inputs, averages
   their fused user representations *without gradient* and adds
   `weight · MSE(u, mean_v u_v)`.

Ids: the store's user ids are the dataset's user ids 1..U (the remapped ids of
users.parquet), row u-1 of a Split is user u, FAISS returns ids (never row positions),
and a training batch carries each row's user id in batch["user"]. Nothing here ever
indexes users by a batch or store row position.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from embeddings_store import EmbeddingStore
from embeddings_store.atomic import atomic_path, atomic_write_text
from pipeline.data.dataset import Dataset
from pipeline.errors import InputError
from pipeline.store_io import check_fingerprint

log = logging.getLogger(__name__)
NEIGHBOURS_FILE = "neighbours.npy"


def retrieve_neighbours(store: EmbeddingStore, ref: str, dataset: Dataset, k: int) -> np.ndarray:
    """[U, k'] int64 user ids: row u-1 = user u's nearest other users, closest first.

    k' = min(k, U - 1). The version must be made for this dataset and cover users 1..U;
    one whose producer says its text used more than the training history is refused.
    """
    version = store.resolve(ref)
    check_fingerprint(dataset, store, version)
    manifest = store.manifest(version)
    history = manifest.producer.config.get("history")
    if history is not None and history != "train":
        raise InputError(f"{ref}: user vectors built from {history!r} history; neighbours must "
                         "come from training-period interactions only")
    if history is None:
        log.warning("%s does not state which history its user texts saw; assuming training only", ref)
    ids, vectors = store.read(version)  # [U], [U, H]
    n_users = dataset.n_users
    if len(ids) != n_users or not np.array_equal(np.sort(ids), np.arange(1, n_users + 1)):
        raise InputError(f"{ref}: ids must cover users 1..{n_users}, has {len(ids)} rows")
    k = min(k, n_users - 1)
    if k < 1:
        raise InputError(f"{ref}: need at least 2 users to retrieve neighbours")
    found, _ = store.open_index(version).search(np.asarray(vectors), k + 1)  # [U, k+1] ids
    keep = (found != ids[:, None]) & (found > 0)  # drop self (wherever it ranks) and empty slots
    # The first k kept entries of each row, in rank order (a stable sort moves drops last).
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]  # [U, k]
    if not np.take_along_axis(keep, order, axis=1).all():
        raise InputError(f"{ref}: the index returned fewer than {k} neighbours for some users")
    out = np.empty((n_users, k), dtype=np.int64)
    out[ids - 1] = np.take_along_axis(found, order, axis=1)  # row of store id u -> row u-1
    return out


def neighbours_for_run(store: EmbeddingStore, ref: str, dataset: Dataset, k: int,
                       run_dir: Path) -> np.ndarray:
    """`retrieve_neighbours`, done once per run: saved as run_dir/neighbours.npy (+ .json
    naming the version and k) and read back when the run resumes."""
    path, meta_path = run_dir / NEIGHBOURS_FILE, run_dir / "neighbours.json"
    meta = {"ref": str(store.resolve(ref)), "k": k, "fingerprint": dataset.fingerprint}
    if path.is_file() and meta_path.is_file() and json.loads(meta_path.read_text()) == meta:
        return np.load(path)
    table = retrieve_neighbours(store, ref, dataset, k)
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, table)
    atomic_write_text(meta_path, json.dumps(meta))
    return table


