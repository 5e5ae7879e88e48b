"""The prepared Dataset contract (../shared/DESIGN.md, "Dataset contract").

A prepared dataset is a folder: interactions.parquet, items.parquet, users.parquet and
meta.json (source, filters, counts, fingerprint). Everything downstream reads it through
`Dataset`, never the raw source.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import polars as pl

from pipeline.errors import InputError

FILES = ("interactions.parquet", "items.parquet", "users.parquet", "meta.json")


@dataclass(frozen=True)
class Dataset:
    path: Path
    meta: dict
    interactions: pl.DataFrame  # user_id:int32 1..U, item_id:int32 1..N, timestamp:int64
    items: pl.DataFrame  # item_id, raw_id, text attribute columns
    users: pl.DataFrame  # user_id, raw_id

    @classmethod
    def load(cls, path: Path) -> Dataset:
        for f in FILES:
            if not (path / f).is_file():
                raise InputError(f"prepared dataset {path} lacks {f}")
        return cls(
            path=path,
            meta=json.loads((path / "meta.json").read_text()),
            interactions=pl.read_parquet(path / "interactions.parquet"),
            items=pl.read_parquet(path / "items.parquet"),
            users=pl.read_parquet(path / "users.parquet"),
        )

    @property
    def name(self) -> str:
        return self.meta["name"]

    @property
    def fingerprint(self) -> str:
        return self.meta["fingerprint"]

    @property
    def n_users(self) -> int:
        return int(self.meta["counts"]["users"])

    @property
    def n_items(self) -> int:
        return int(self.meta["counts"]["items"])

    @property
    def text_columns(self) -> list[str]:
        return [c for c in self.items.columns if c not in ("item_id", "raw_id")]

    @cached_property
    def sequences(self) -> list[np.ndarray]:
        """Time-ordered item ids per user; element u-1 belongs to user u. [U][len_u] int64."""
        ids = self.interactions["item_id"].to_numpy().astype(np.int64)
        users = self.interactions["user_id"].to_numpy()
        # interactions are sorted by (user, time), so users come in contiguous runs.
        bounds = np.flatnonzero(np.diff(users)) + 1
        return np.split(ids, bounds)


def read_meta(path: Path) -> dict:
    """A prepared dataset's meta.json alone (cheap: for cache keys and run folder names,
    without loading the Parquet files)."""
    meta = path / "meta.json"
    if not meta.is_file():
        raise InputError(f"prepared dataset {path} lacks meta.json")
    return json.loads(meta.read_text())


def read_fingerprint(path: Path) -> str:
    """The content fingerprint of a prepared dataset (from its meta.json)."""
    return read_meta(path)["fingerprint"]


def fingerprint(interactions: pl.DataFrame, items: pl.DataFrame) -> str:
    """Content hash of a prepared dataset: same events and item text ⇒ same fingerprint."""
    h = hashlib.sha256()
    for col in ("user_id", "item_id", "timestamp"):
        h.update(np.ascontiguousarray(interactions[col].to_numpy()).tobytes())
    h.update(items.write_csv().encode())
    return h.hexdigest()[:16]
