"""Reading a stored kind for a dataset, checked: the one copy of "resolve, check the
fingerprint and the id coverage, read".

Every consumer of stored vectors (LLM-init tables, RAT, TSLRec, LLM-ESR, E4SRec, the
preflight) goes through here, so a version made for another dataset or one that misses
items is refused the same way everywhere, in one line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embeddings_store import EmbeddingStore, VersionRef
from pipeline.data.dataset import Dataset
from pipeline.errors import InputError

FLAGS = {"items": "--embeddings", "users": "--user-embeddings"}


def resolve_kind(dataset: Dataset, store: EmbeddingStore | str | Path, ref: str,
                 entity: str) -> str:
    """`items/x` (or `…@version|tag`) for this dataset -> its exact `dataset/kind@version`;
    `entity` ("items" | "users") must match the kind."""
    store = store if isinstance(store, EmbeddingStore) else EmbeddingStore(store)
    found = store.resolve(ref, dataset=dataset.name)
    if not found.kind.startswith(f"{entity}/"):
        raise InputError(f"{FLAGS.get(entity, entity)} {ref}: a {entity} kind ({entity}/…) is "
                         f"needed, not {found.kind}")
    return str(found)


def check_fingerprint(dataset: Dataset, store: EmbeddingStore, version: VersionRef) -> None:
    made_from = store.manifest(version).dataset.fingerprint
    if made_from != dataset.fingerprint:
        raise InputError(f"{version} was made from dataset fingerprint {made_from}, not "
                         f"{dataset.fingerprint} ({dataset.name}); regenerate it for this dataset")


def read_catalogue(dataset: Dataset, store: EmbeddingStore, ref: str | VersionRef,
                   check_dataset: bool = True) -> tuple[VersionRef, np.ndarray]:
    """(exact version, [N, D] float32 rows in id order: row i-1 ↔ item i) of a version that
    covers the catalogue 1..N; made from this dataset unless `check_dataset` is False."""
    version = store.resolve(ref, dataset=dataset.name)
    if check_dataset:
        check_fingerprint(dataset, store, version)
    ids, vectors = store.read(version)
    n = dataset.n_items
    if len(ids) != n or not np.array_equal(np.sort(ids), np.arange(1, n + 1)):
        raise InputError(f"{version}: ids must cover items 1..{n}, has {len(ids)} rows")
    return version, np.asarray(vectors, dtype=np.float32)[np.argsort(ids, kind="stable")]
