"""Amazon product reviews, 2014 (McAuley et al.) and 2018 (Ni et al.) releases.

2014: `reviews_<Cat>_5.json.gz` (or the full `reviews_<Cat>.json.gz`), strict JSON lines,
and `meta_<Cat>.json.gz`, whose lines are Python literals (single quotes) and whose
`categories` is a list of category paths. 2018: `<Cat>_5.json.gz` / `<Cat>.json.gz` and a
strict-JSON `meta_<Cat>.json.gz` with `category` (a list) and `description` (a list).
Both carry reviewerID, asin, overall, unixReviewTime per review line.

cfg.path is the folder (cfg.category picks the category when it holds several) or the
reviews file itself, with its meta file beside it.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.data.config import DataConfig
from pipeline.data.raw import RawData
from pipeline.data.sources._io import (
    DESCRIPTION_CHARS,
    ColumnBuffer,
    add_count,
    as_id,
    clean_text,
    iter_records,
    parse_json_or_literal,
    require_file,
    to_int,
)
from pipeline.data.sources.reviews import ReviewBuffer
from pipeline.errors import InputError

log = logging.getLogger(__name__)
SOURCE = "amazon"
_REVIEWS = re.compile(r"^(?:reviews_)?(?P<cat>.+?)(?P<core>_5)?\.json(?:\.gz)?$")
_PRICE = re.compile(r"\d")
TITLE_CHARS = 300  # a few 2018 titles are whole scraped pages
PRICE_CHARS = 30  # … and a few prices are CSS; neither is a title or a price
ITEM_COLUMNS = ("item", "title", "brand", "categories", "description", "price")


def load(cfg: DataConfig, cache_dir: Path) -> RawData:
    assert cfg.path is not None
    reviews, category = find_reviews(cfg.path, cfg.category)
    meta = reviews.parent / f"meta_{category}.json.gz"
    if not meta.is_file() and (reviews.parent / f"meta_{category}.json").is_file():
        meta = reviews.parent / f"meta_{category}.json"
    require_file(meta, SOURCE, f"the item meta data beside {reviews.name}")
    counts: dict[str, int] = {}
    interactions = read_reviews(reviews, counts)
    items = read_meta(meta, counts)
    return RawData.of(cfg, interactions, items, counts)


def find_reviews(path: Path, category: str | None) -> tuple[Path, str]:
    """Pick the reviews file and its category name from a file or a folder.

    In a folder holding both the 5-core and the full file of a category, the 5-core file
    (what the papers use) wins.
    """
    if path.is_file():
        m = _REVIEWS.match(path.name)
        if m is None or path.name.startswith("meta_"):
            raise InputError(
                f"{SOURCE}: {path.name} is not a reviews file "
                "(expected reviews_<Cat>[_5].json.gz or <Cat>[_5].json.gz)"
            )
        return path, m["cat"]
    found = [
        (m["cat"], m["core"] is None, p)
        for p in sorted(path.iterdir())
        if p.is_file() and not p.name.startswith("meta_") and (m := _REVIEWS.match(p.name))
    ]
    if category is not None:
        found = [f for f in found if f[0] == category]
    cats = sorted({f[0] for f in found})
    if not cats:
        wanted = f"category {category!r}" if category else "any category"
        raise InputError(f"{SOURCE}: no reviews file for {wanted} in {path}")
    if len(cats) > 1:
        raise InputError(
            f"{SOURCE}: {path} holds reviews of several categories ({', '.join(cats)}); "
            "set `category` to pick one"
        )
    cat, _, chosen = min(found, key=lambda f: (f[1], f[2].name))
    log.info("amazon: reading %s", chosen.name)
    return chosen, cat


def read_reviews(path: Path, counts: dict[str, int]) -> pl.DataFrame:
    """Stream review lines into (user, item, timestamp, rating); count what is skipped."""
    buf = ReviewBuffer("timestamp", pl.Int64(),
                       incomplete="reviews without reviewerID, asin or unixReviewTime",
                       bad_rating="reviews with a non-numeric overall rating")
    # Strict JSON as documented; the loose (Python-literal) lines some 2014 dumps hold
    # are accepted too, at no cost for lines that are JSON.
    for rec in iter_records(path, counts, "review", parse_json_or_literal):
        ts = rec.get("unixReviewTime")
        ts = ts if type(ts) is int else to_int(ts)  # a time as a string: odd lines only
        buf.add(rec.get("reviewerID"), rec.get("asin"), ts, rec.get("overall"))
    df = buf.counted(counts)
    if df.height == 0:
        raise InputError(f"{path}: no review line has reviewerID, asin and unixReviewTime")
    return df


def read_meta(path: Path, counts: dict[str, int]) -> pl.DataFrame:
    """Stream meta lines (JSON or Python literal) into the item text table."""
    buf = ColumnBuffer({c: pl.String() for c in ITEM_COLUMNS})
    no_asin = 0
    for rec in iter_records(path, counts, "meta", parse_json_or_literal):
        asin = as_id(rec.get("asin"))
        if asin is None:
            no_asin += 1
            continue
        buf.append(asin, *item_text(rec))
    add_count(counts, "meta lines without asin", no_asin)
    return buf.frame()


def item_text(rec: dict[str, Any]) -> tuple[str | None, ...]:
    """title, brand, categories, description, price of one meta record (either release)."""
    cats = rec.get("categories", rec.get("category"))  # 2014: list of lists; 2018: list
    return (
        clean_text(rec.get("title"), limit=TITLE_CHARS),
        clean_text(rec.get("brand")),
        clean_text(cats, unique=True),
        clean_text(rec.get("description"), sep=" ", limit=DESCRIPTION_CHARS),
        _price(rec.get("price")),
    )


def _price(value: Any) -> str | None:
    """2014 prices are floats, 2018 ones strings like "$12.99"; drop non-prices."""
    if isinstance(value, float | int) and not isinstance(value, bool):
        return f"{float(value):.2f}"
    text = clean_text(value)
    if text is None or len(text) > PRICE_CHARS or not _PRICE.search(text):
        return None
    return text
