"""MovieLens-1M from the GroupLens `ml-1m` folder: ratings.dat and movies.dat.

Both files separate fields with `::` (polars' CSV reader takes one-byte separators
only, so lines are split as strings). movies.dat is latin-1 encoded; its titles carry
the year, "Toy Story (1995)", which becomes a `year` column of its own.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipeline.data.config import DataConfig
from pipeline.data.raw import RawData
from pipeline.data.sources._io import add_count, require_file
from pipeline.errors import InputError

SOURCE = "movielens-1m"
_TITLE_YEAR = r"^(.*?)\s*\((\d{4})\)\s*$"


def load(cfg: DataConfig, cache_dir: Path) -> RawData:
    assert cfg.path is not None
    folder = cfg.path.parent if cfg.path.is_file() else cfg.path
    counts: dict[str, int] = {}
    interactions = read_ratings(require_file(folder / "ratings.dat", SOURCE), counts)
    items = read_movies(require_file(folder / "movies.dat", SOURCE), counts)
    return RawData.of(cfg, interactions, items, counts)


def _fields(path: Path, n: int, counts: dict[str, int], role: str) -> pl.DataFrame:
    """Split every line on `::` into n String columns f0..f{n-1}; count malformed lines."""
    text = path.read_bytes().decode("latin-1")  # latin-1 never fails; ratings are ASCII
    lines = pl.Series("line", text.splitlines(), dtype=pl.String)
    lines = lines.filter(lines.str.strip_chars() != "")
    parts = lines.str.split("::")
    ok = parts.list.len() == n
    add_count(counts, f"{role} lines without {n} '::'-separated fields", int((~ok).sum()))
    parts = parts.filter(ok)
    if parts.len() == 0:
        raise InputError(f"{path}: no line has {n} '::'-separated fields — is it the right file?")
    return pl.DataFrame({f"f{i}": parts.list.get(i) for i in range(n)})


def read_ratings(path: Path, counts: dict[str, int]) -> pl.DataFrame:
    """UserID::MovieID::Rating::Timestamp → user, item, timestamp, rating."""
    df = _fields(path, 4, counts, "ratings.dat").select(
        pl.col("f0").str.strip_chars().alias("user"),
        pl.col("f1").str.strip_chars().alias("item"),
        pl.col("f3").str.strip_chars().cast(pl.Int64, strict=False).alias("timestamp"),
        pl.col("f2").str.strip_chars().cast(pl.Float64, strict=False).alias("rating"),
    )
    bad = pl.col("timestamp").is_null() | pl.col("rating").is_null()
    add_count(
        counts, "ratings.dat lines with a non-numeric rating or timestamp", df.filter(bad).height
    )
    return df.filter(~bad)


def read_movies(path: Path, counts: dict[str, int]) -> pl.DataFrame:
    """MovieID::Title (Year)::Genre|Genre → item, title, year, genres ("A, B")."""
    df = _fields(path, 3, counts, "movies.dat")
    title = pl.col("f1").str.strip_chars()
    return df.select(
        pl.col("f0").str.strip_chars().alias("item"),
        pl.when(title.str.contains(_TITLE_YEAR))
        .then(title.str.extract(_TITLE_YEAR, 1))
        .otherwise(title)
        .alias("title"),
        title.str.extract(_TITLE_YEAR, 2).alias("year"),
        _null_if_empty(
            pl.col("f2")
            .str.split("|")
            .list.eval(pl.element().str.strip_chars())
            .list.eval(pl.element().filter(pl.element() != ""))
            .list.join(", ")
        ).alias("genres"),
    )


def _null_if_empty(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr != "").then(expr)
