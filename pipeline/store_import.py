"""Item vectors made elsewhere → a store version of a prepared dataset (`llm4srs store import`).

The file is a Parquet table with an id column and a vector column (a fixed-size or plain
list of floats, as the store itself writes). Ids are the raw item ids of the source files
(`--ids raw`, what a user's own pipeline knows) or the prepared ids 1..N (`--ids
internal`). Every problem is one line naming the file and a few offending ids, and is
found before the store is touched; the store then validates again while writing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from embeddings_store import EmbeddingStore, ManifestInput, Producer, VersionRef
from pipeline.data.dataset import Dataset
from pipeline.errors import InputError

IdSpace = Literal["raw", "internal"]


def _sample(values: list) -> str:
    return ", ".join(repr(v) for v in values[:3]) + (", …" if len(values) > 3 else "")


def read_vectors_file(path: Path, id_column: str = "id",
                      vector_column: str = "vector") -> tuple[pl.Series, np.ndarray]:
    """(ids [N] as in the file, vectors [N, D] float32) from a Parquet file."""
    if not path.is_file():
        raise InputError(f"{path} does not exist")
    try:
        present = pl.read_parquet_schema(path)
    except (pl.exceptions.PolarsError, OSError) as e:
        raise InputError(f"cannot read {path} as Parquet ({str(e).splitlines()[0]})") from None
    missing = [c for c in (id_column, vector_column) if c not in present]
    if missing:
        raise InputError(f"{path} lacks column(s) {missing}; columns present: {list(present)}")
    try:
        df = pl.read_parquet(path, columns=[id_column, vector_column])
    except (pl.exceptions.PolarsError, OSError) as e:
        raise InputError(f"cannot read {path} as Parquet ({str(e).splitlines()[0]})") from None
    ids, vec = df[id_column], df[vector_column]
    if ids.null_count() or vec.null_count():
        raise InputError(f"{path}: null values in {id_column!r} or {vector_column!r}")
    if isinstance(vec.dtype, pl.Array):
        vec = vec.cast(pl.List(vec.dtype.inner))
    if not isinstance(vec.dtype, pl.List) or not vec.dtype.inner.is_numeric():
        raise InputError(f"{path}: column {vector_column!r} has type {vec.dtype}, "
                         "expected a list of floats")
    lengths = vec.list.len().unique().sort().to_list()
    if len(lengths) != 1 or lengths[0] == 0:
        raise InputError(f"{path}: vectors in {vector_column!r} have lengths {lengths[:5]}; "
                         "every vector needs the same positive length")
    flat = vec.explode().cast(pl.Float32).to_numpy()
    return ids, np.ascontiguousarray(flat.reshape(len(vec), lengths[0]), dtype=np.float32)


def item_ids(dataset: Dataset, ids: pl.Series, id_space: IdSpace, path: Path) -> np.ndarray:
    """The file's ids as prepared item ids [N] int64; unknown, repeated or missing items
    are refused (store versions used for training cover the catalogue exactly)."""
    if id_space == "raw":
        raw = ids.cast(pl.String).str.strip_chars()
        lookup = dict(zip(dataset.items["raw_id"].cast(pl.String).to_list(),
                          dataset.items["item_id"].to_list(), strict=True))
        mapped = [lookup.get(r) for r in raw.to_list()]
        unknown = [r for r, m in zip(raw.to_list(), mapped, strict=True) if m is None]
        if unknown:
            raise InputError(f"{path}: {len(unknown)} ids are not items of dataset {dataset.name} "
                             f"({_sample(unknown)}); --ids raw expects the source's raw item ids")
        out = np.asarray(mapped, dtype=np.int64)
        shown = dict(zip(out.tolist(), raw.to_list(), strict=True))
    else:
        if not ids.dtype.is_integer():
            raise InputError(f"{path}: --ids internal needs integer ids, got {ids.dtype}")
        out = ids.cast(pl.Int64).to_numpy()
        bad = out[(out < 1) | (out > dataset.n_items)]
        if len(bad):
            raise InputError(f"{path}: {len(bad)} ids are outside items 1..{dataset.n_items} of "
                             f"dataset {dataset.name} ({_sample(bad.tolist())})")
        shown = {i: i for i in out.tolist()}
    values, counts = np.unique(out, return_counts=True)
    if (counts > 1).any():
        dup = [shown[int(v)] for v in values[counts > 1]]
        raise InputError(f"{path}: {len(dup)} items appear more than once ({_sample(dup)})")
    if len(values) != dataset.n_items:
        raw_of = dict(zip(dataset.items["item_id"].to_list(),
                          dataset.items["raw_id"].cast(pl.String).to_list(), strict=True))
        missing = np.setdiff1d(np.arange(1, dataset.n_items + 1), values)
        names = [raw_of[int(i)] if id_space == "raw" else int(i) for i in missing[:3]]
        raise InputError(f"{path}: covers {len(values)} of the {dataset.n_items} items of "
                         f"dataset {dataset.name}; missing e.g. {_sample(names)}")
    return out


def import_item_vectors(dataset: Dataset, store: EmbeddingStore, kind: str, path: Path,
                        id_space: IdSpace = "raw", id_column: str = "id",
                        vector_column: str = "vector") -> VersionRef:
    """Validate the file against `dataset` and write it as a new version of `kind`."""
    if not kind.startswith("items/"):
        raise InputError(f"store import writes item kinds (items/…), not {kind!r}")
    ids, vectors = read_vectors_file(path, id_column, vector_column)  # [N], [N, D]
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        raise InputError(f"{path}: {int(bad.sum())} vectors contain NaN/Inf "
                         f"(ids {_sample(ids.filter(pl.Series(bad)).to_list())})")
    internal = item_ids(dataset, ids, id_space, path)
    order = np.argsort(internal)
    internal, vectors = internal[order], vectors[order]
    norms = np.linalg.norm(vectors, axis=1)
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    manifest = ManifestInput(
        dataset_fingerprint=dataset.fingerprint,
        producer=Producer(generator="import", config={
            "file": str(path.resolve()), "sha256": digest, "id_space": id_space,
            "id_column": id_column, "vector_column": vector_column}),
        metric="cosine", normalized=bool(np.all(np.abs(norms - 1) <= 1e-4)),
    )
    return store.write(dataset.name, kind, internal, vectors, manifest,
                       expected_ids=np.arange(1, dataset.n_items + 1))
