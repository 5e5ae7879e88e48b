"""The Yelp Open (academic) dataset: review and business json-lines files.

Reviews carry user_id, business_id, stars and a date "YYYY-MM-DD HH:MM:SS" (older
releases: "YYYY-MM-DD"), read as UTC and turned into unix seconds. Businesses give the
item text: name, city, state and categories (a comma string; a list in old releases).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipeline.data.config import DataConfig
from pipeline.data.raw import RawData
from pipeline.data.sources._io import (
    ColumnBuffer,
    add_count,
    as_id,
    clean_text,
    iter_records,
    require_file,
)
from pipeline.data.sources.reviews import ReviewBuffer
from pipeline.errors import InputError

SOURCE = "yelp"
REVIEWS = "yelp_academic_dataset_review.json"
BUSINESSES = "yelp_academic_dataset_business.json"
TEXT_COLUMNS = ("name", "city", "state", "categories")
_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d")


def load(cfg: DataConfig, cache_dir: Path) -> RawData:
    assert cfg.path is not None
    folder = cfg.path.parent if cfg.path.is_file() else cfg.path
    counts: dict[str, int] = {}
    interactions = read_reviews(require_file(folder / REVIEWS, SOURCE), counts)
    items = read_businesses(require_file(folder / BUSINESSES, SOURCE), counts)
    return RawData.of(cfg, interactions, items, counts)


def read_reviews(path: Path, counts: dict[str, int]) -> pl.DataFrame:
    """Stream reviews; dates are parsed afterwards in one vectorised pass."""
    buf = ReviewBuffer("date", pl.String(),
                       incomplete="reviews without user_id, business_id or date",
                       bad_rating="reviews with non-numeric stars")
    for rec in iter_records(path, counts, "review"):
        date = rec.get("date")
        buf.add(rec.get("user_id"), rec.get("business_id"),
                date if isinstance(date, str) else None, rec.get("stars"))
    df = buf.counted(counts).with_columns(unix_seconds(pl.col("date")).alias("timestamp"))
    bad_date = df["timestamp"].null_count()
    add_count(counts, "reviews with an unreadable date", bad_date)
    df = df.drop_nulls("timestamp").drop("date")
    if df.height == 0:
        raise InputError(f"{path}: no review line has user_id, business_id and a readable date")
    return df


def unix_seconds(date: pl.Expr) -> pl.Expr:
    """Unix seconds (UTC) of a date string in any of the Yelp formats, else null."""
    stripped = date.str.strip_chars()
    parsed = [
        stripped.str.to_datetime(fmt, strict=False, time_zone="UTC").dt.epoch("s")
        for fmt in _DATE_FORMATS
    ]
    return pl.coalesce(parsed).cast(pl.Int64)


def read_businesses(path: Path, counts: dict[str, int]) -> pl.DataFrame:
    """Stream businesses into the item text table (name, city, state, categories)."""
    buf = ColumnBuffer({c: pl.String() for c in ("item", *TEXT_COLUMNS)})
    no_id = 0
    for rec in iter_records(path, counts, "business"):
        business = as_id(rec.get("business_id"))
        if business is None:
            no_id += 1
            continue
        buf.append(
            business,
            clean_text(rec.get("name")),
            clean_text(rec.get("city")),
            clean_text(rec.get("state")),
            _categories(rec.get("categories")),
        )
    add_count(counts, "business lines without business_id", no_id)
    return buf.frame()


def _categories(value: object) -> str | None:
    """Normalise "Food,Bakeries" / "Food, Bakeries" / ["Food", "Bakeries"] to "Food, Bakeries"."""
    if isinstance(value, str):
        value = value.split(",")
    return clean_text(value)
