"""Checks the CLI runs before a flow starts, so bad input fails in a second with one line.

A user error raised inside a Prefect task costs the ~30 s backend start first and reaches
the terminal wrapped in Prefect's tracebacks; everything that can be decided from the
prepared dataset and a store manifest alone is decided here instead.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from embeddings_store import EmbeddingStore
from pipeline.data.dataset import Dataset
from pipeline.errors import InputError
from pipeline.store_io import check_fingerprint, resolve_kind


def text_attributes(dataset: Dataset) -> list[str]:
    """The item text columns that hold at least one non-empty value."""
    out = []
    for col in dataset.text_columns:
        values = dataset.items[col].cast(pl.String, strict=False).str.strip_chars()
        if values.drop_nulls().str.len_chars().gt(0).any():
            out.append(col)
    return out


def check_text_for(dataset: Dataset, generators: list[str], ids_as_text: bool) -> None:
    """Generators that read item text (registry `needs_text`) refuse a dataset without any;
    `semantic` embeds ids-as-text only when asked to."""
    from pipeline.methods.registry import get_generator, in_needs_order

    if text_attributes(dataset):
        return
    for name in in_needs_order(generators):
        gen = get_generator(name)
        if gen.needs_text and not (name == "semantic" and ids_as_text):
            raise InputError(f"dataset {dataset.name} {gen.no_text}")


def check_item_embedding(dataset: Dataset, store: EmbeddingStore, ref: str,
                         init_dim: int | None = None) -> str:
    """A stored item kind fits `dataset`: made from it (fingerprint), one vector per item
    1..N in order, and, for `init` (PCA to the backbone dim), at least `init_dim` wide
    and long. Returns the exact `dataset/kind@version`. Reads the manifest and the ids only."""
    version = store.resolve(resolve_kind(dataset, store, ref, "items"))
    where = f"--embeddings {version}"
    check_fingerprint(dataset, store, version)
    m = store.manifest(version)
    n = dataset.n_items
    ids = store.read_ids(version)
    if not np.array_equal(ids, np.arange(1, n + 1)):
        missing = np.setdiff1d(np.arange(1, n + 1), ids)
        raise InputError(f"{where} has {m.count} vectors for a dataset of {n} items "
                         f"({len(missing)} items missing, e.g. {missing[:3].tolist()}); "
                         "it must hold items 1..N in order")
    if init_dim is not None and init_dim > min(m.dim, m.count):
        raise InputError(f"{where} is {m.count}x{m.dim}: too narrow for model.dim={init_dim} "
                         "with --embedding-mode init (PCA); lower model.dim or use frozen_adapter")
    return str(version)
