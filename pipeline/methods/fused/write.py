"""Several item tables of one catalogue -> one `items/fused` table (with lineage).

Each part is centred and scaled to the same total variance before the concatenation, so a
wide text table (576-d) does not drown a narrow aligned one (64-d) in the PCA that LLM-init
takes of the result (pipeline/methods/llm_init/table.py): each part brings the directions
it varies most in, whatever its width or scale.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embeddings_store import EmbeddingStore, ManifestInput, Parent, Producer, VersionRef
from embeddings_store.errors import StoreError
from pipeline.data.dataset import Dataset
from pipeline.errors import InputError
from pipeline.methods.fused.config import FusedConfig
from pipeline.store_io import read_catalogue

KIND = "items/fused"


def fuse_tables(tables: list[np.ndarray]) -> np.ndarray:
    """tables: k × [N, H_i] rows of the same items -> [N, ΣH_i]; each part centred, then
    scaled to Frobenius norm √N (mean squared row norm 1)."""
    n = {t.shape[0] for t in tables}
    if len(n) != 1:
        raise ValueError(f"the tables cover different item counts: {sorted(n)}")
    parts = []
    for t in tables:
        c = t.astype(np.float64) - t.mean(axis=0, dtype=np.float64)
        norm = float(np.linalg.norm(c))
        if norm == 0:
            raise ValueError("a constant table has no direction to contribute")
        parts.append(c * (np.sqrt(len(c)) / norm))
    return np.concatenate(parts, axis=1).astype(np.float32)


def check_parts(dataset: Dataset, store_root: str | Path, cfg: FusedConfig,
                made: set[str]) -> None:
    """Refuse, in one line and before any work, a part that neither the same run of the
    embeddings flow writes (`made`) nor the store holds for this dataset."""
    store = EmbeddingStore(store_root)
    for kind in cfg.parts:
        if kind in made:
            continue
        try:
            store.resolve(kind, dataset=dataset.name)
        except StoreError:
            raise InputError(f"fused: part {kind} is not in {store_root} for {dataset.name}; "
                             f"write it first (llm4srs embed …) or choose other --fused-parts") from None


def write_fused(dataset: Dataset, store: EmbeddingStore, cfg: FusedConfig,
                refs: dict[str, str]) -> VersionRef:
    """Fuse the parts (refs[kind] = the exact version to read, every part present) and store
    items 1..N as `items/fused`, naming each part's version as a parent."""
    versions, tables = [], []
    for kind in cfg.parts:
        version, vectors = read_catalogue(dataset, store, refs[kind])  # [N, H] items 1..N
        versions.append(version)
        tables.append(vectors)
    fused = fuse_tables(tables)
    ids = np.arange(1, len(fused) + 1, dtype=np.int64)
    manifest = ManifestInput(
        dataset_fingerprint=dataset.fingerprint,
        producer=Producer(generator="fused", model_id="+".join(v.kind for v in versions),
                          config=cfg.model_dump(mode="json")),
        metric="ip", centered=True,
        parents=[Parent(kind=v.kind, version=v.version) for v in versions],
        metrics={"part_dims": [int(t.shape[1]) for t in tables]},
    )
    return store.write(dataset.name, KIND, ids, fused, manifest, expected_ids=ids)
