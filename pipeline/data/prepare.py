"""Raw source → prepared Dataset: rating threshold, dedup, iterative k-core, id remapping.

Every dropped row is counted in meta.json["dropped"]; nothing disappears silently.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from embeddings_store.atomic import atomic_dir, remove_stale
from pipeline.data.config import SOURCES, DataConfig
from pipeline.data.dataset import Dataset, fingerprint
from pipeline.data.raw import RawData
from pipeline.errors import InputError

log = logging.getLogger(__name__)
META_VERSION = 1


def prepare_dataset(cfg: DataConfig, data_dir: Path, force: bool = False) -> Dataset:
    """Load, filter, remap and write `cfg`'s dataset under data_dir/prepared/ (cached).

    The folder name carries the config hash, so different filters never collide; a
    finished folder is reused unless `force`.
    """
    out = prepared_folder(cfg, data_dir)
    if (out / "meta.json").is_file() and not force:
        return Dataset.load(out)
    if out.parent.is_dir():
        remove_stale(out.parent)  # what a killed prepare left behind
    raw = SOURCES[cfg.source].load(cfg, data_dir / "raw")
    interactions, items, users, dropped = filter_and_remap(raw, cfg)
    meta = {
        "meta_version": META_VERSION,
        "name": cfg.dataset_name,
        "source": cfg.source,
        "config": cfg.model_dump(mode="json"),
        "filters": {
            "rating_threshold": cfg.rating_threshold,
            "user_core": cfg.user_core,
            "item_core": cfg.item_core,
            "min_user_len": cfg.min_user_len,
            "dedup": cfg.dedup,
        },
        "counts": {
            "users": users.height,
            "items": items.height,
            "interactions": interactions.height,
        },
        "dropped": {**raw.counts, **dropped},
        "text_columns": [c for c in items.columns if c not in ("item_id", "raw_id")],
        "fingerprint": fingerprint(interactions, items),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _write_atomically(out, interactions, items, users, meta)
    log.info("prepared %s: %s", cfg.dataset_name, meta["counts"])
    return Dataset.load(out)


def prepared_folder(cfg: DataConfig, data_dir: Path) -> Path:
    """Where `prepare_dataset` writes (and reuses) cfg's dataset."""
    return data_dir / "prepared" / f"{cfg.dataset_name}-{_cache_key(cfg)}"


def missing_source(cfg: DataConfig, data_dir: Path) -> Path | None:
    """cfg's raw data path when it is absent and no prepared copy stands in for it, i.e.
    `prepare_dataset` would fail; None when it can prepare (a downloading source has no
    path). Lets a command refuse, or skip, such a dataset before anything trains."""
    if cfg.path is None or cfg.path.exists():
        return None
    return None if (prepared_folder(cfg, data_dir) / "meta.json").is_file() else cfg.path


def _cache_key(cfg: DataConfig) -> str:
    """Config hash plus the size and mtime of the user's raw files, so replacing a raw
    file at the same path prepares the dataset again instead of reusing a stale one."""
    key = cfg.config_hash()
    if cfg.path is None or not cfg.path.exists():
        return key
    files = [cfg.path] if cfg.path.is_file() else sorted(p for p in cfg.path.rglob("*") if p.is_file())
    stamp = "|".join(f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)
    return key + "-" + hashlib.sha256(stamp.encode()).hexdigest()[:6]


def filter_and_remap(
    raw: RawData, cfg: DataConfig
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, dict[str, int]]:
    df = raw.interactions
    dropped: dict[str, int] = {}

    def note(reason: str, before: int, after: int) -> None:
        if before != after:
            dropped[reason] = dropped.get(reason, 0) + before - after

    n = df.height
    df = df.drop_nulls(["user", "item", "timestamp"])
    note("rows with a null user, item or timestamp", n, df.height)
    if cfg.rating_threshold is not None:
        if df["rating"].null_count() == df.height:
            raise InputError(
                f"rating_threshold={cfg.rating_threshold} set but {raw.source} has no ratings"
            )
        n = df.height  # (NaN, which compares above every threshold, is null by now)
        df = df.filter(pl.col("rating").is_not_null())
        note("rows without a rating, missing or NaN (rating_threshold is set)", n, df.height)
        n = df.height
        df = df.filter(pl.col("rating") >= cfg.rating_threshold)
        note(f"ratings below {cfg.rating_threshold}", n, df.height)
    # Deterministic time order: ties on timestamp are broken by raw item id.
    df = df.sort(["user", "timestamp", "item"])
    if cfg.dedup:
        n = df.height
        df = df.unique(["user", "item"], keep="first", maintain_order=True)
        note("repeated (user, item) events", n, df.height)
    df = _k_core(df, max(cfg.user_core, cfg.min_user_len), cfg.item_core, note)
    if df.height == 0:
        raise InputError(
            f"dataset {cfg.dataset_name!r} is empty after filtering "
            f"(rating_threshold={cfg.rating_threshold}, user_core={cfg.user_core}, "
            f"item_core={cfg.item_core}, min_user_len={cfg.min_user_len})"
        )

    users = _id_map(df["user"], "user_id")
    items_map = _id_map(df["item"], "item_id")
    interactions = (
        df.join(users, left_on="user", right_on="raw_id")
        .join(items_map, left_on="item", right_on="raw_id")
        .select("user_id", "item_id", pl.col("timestamp").cast(pl.Int64))
        .sort(["user_id", "timestamp", "item_id"])
    )
    text = raw.items.unique("item", keep="first").rename({"item": "raw_id"})
    items = items_map.join(text, on="raw_id", how="left").sort("item_id")
    return interactions, items, users, dropped


def _k_core(df: pl.DataFrame, user_core: int, item_core: int, note) -> pl.DataFrame:
    """Drop users and items below their cores until both hold (iterative k-core)."""
    while True:
        n = df.height
        if item_core > 1:
            df = df.filter(pl.len().over("item") >= item_core)
            note(f"events of items with < {item_core} users (k-core)", n, df.height)
        m = df.height
        df = df.filter(pl.len().over("user") >= user_core)
        note(f"events of users with < {user_core} items (k-core / min length)", m, df.height)
        if df.height == n:
            return df


def _id_map(raw_ids: pl.Series, name: str) -> pl.DataFrame:
    """Map raw ids to 1..K in natural order (numeric when every id is numeric)."""
    # unique() has no fixed order: sort by (numeric value, string) so ties such as
    # "7" / "07" and every run give the same ids.
    frame = pl.DataFrame({"raw_id": raw_ids.unique()})
    frame = frame.with_columns(num=pl.col("raw_id").cast(pl.Int64, strict=False))
    keys = ["num", "raw_id"] if frame["num"].null_count() == 0 else ["raw_id"]
    ordered = frame.sort(keys)["raw_id"]
    return pl.DataFrame(
        {name: pl.int_range(1, len(ordered) + 1, eager=True).cast(pl.Int32), "raw_id": ordered}
    )


def _write_atomically(
    out: Path, interactions: pl.DataFrame, items: pl.DataFrame, users: pl.DataFrame, meta: dict
) -> None:
    """Write into a sibling temp folder, then rename: a crash never leaves half a dataset.

    A forced re-prepare replaces the old folder (moved aside first, never deleted first).
    When another process prepared the same config meanwhile (same hash, same content), its
    folder is kept and ours dropped.
    """
    replace = out.exists()
    try:
        with atomic_dir(out, replace=replace) as tmp:
            interactions.write_parquet(tmp / "interactions.parquet")
            items.write_parquet(tmp / "items.parquet")
            users.write_parquet(tmp / "users.parquet")
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    except OSError as err:
        concurrent = err.errno in (errno.ENOTEMPTY, errno.EEXIST)
        if replace or not concurrent or not (out / "meta.json").is_file():
            raise
