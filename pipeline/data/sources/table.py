"""Any Parquet or CSV of interactions, read through the column mapping cfg.columns.

Files are scanned lazily and only the mapped columns are read, so a wide export costs
what its four columns cost. CSV cells are read as strings (ids keep leading zeros) and
converted here; timestamps may be integers, floats, dates/datetimes or date strings.
An optional item file (Parquet/CSV) supplies the item text.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipeline.data.config import DataConfig, TableColumns
from pipeline.data.raw import RawData
from pipeline.data.sources._io import add_count, require_file
from pipeline.errors import InputError

SOURCE = "table"
SUFFIXES = (".parquet", ".pq", ".csv")


def load(cfg: DataConfig, cache_dir: Path) -> RawData:
    assert cfg.path is not None
    cols = cfg.columns
    counts: dict[str, int] = {}
    interactions = read_interactions(require_file(cfg.path, SOURCE), cols, counts)
    items = read_items(cfg.path, cols)
    return RawData.of(cfg, interactions, items, counts)


def scan(path: Path) -> pl.LazyFrame:
    """A lazy scan by suffix; every CSV cell is a string until converted on purpose."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"{SOURCE}: {path} has suffix {suffix!r}; expected .parquet or .csv")
    if suffix == ".csv":
        return pl.scan_csv(path, infer_schema=False)
    return pl.scan_parquet(path)


def _columns(path: Path) -> list[str]:
    try:
        return scan(path).collect_schema().names()
    except pl.exceptions.PolarsError as e:
        raise InputError(f"{SOURCE}: cannot read {path} ({str(e).splitlines()[0]})") from None


def select(path: Path, columns: list[str]) -> pl.DataFrame:
    """Read only `columns` of `path`; absent ones are a one-line InputError listing those present."""
    try:
        lf = scan(path)
        present = lf.collect_schema().names()
        missing = [c for c in dict.fromkeys(columns) if c not in present]
        if missing:
            raise InputError(
                f"{SOURCE}: {path} lacks mapped column(s) {missing}; columns present: {present}"
            )
        return lf.select(list(dict.fromkeys(columns))).collect()
    except pl.exceptions.PolarsError as e:
        raise InputError(f"{SOURCE}: cannot read {path} ({str(e).splitlines()[0]})") from None


def read_interactions(path: Path, cols: TableColumns, counts: dict[str, int]) -> pl.DataFrame:
    """(user, item, timestamp, rating) rows; rows with an unreadable time or rating are counted."""
    mapped = [cols.user, cols.item, *(c for c in (cols.timestamp, cols.rating) if c)]
    df = select(path, mapped)
    n = df.height
    if cols.timestamp is None:  # file order is time order
        ts = pl.Series("timestamp", range(n), dtype=pl.Int64)
    else:
        ts = _timestamps(df[cols.timestamp], path)
    if cols.rating is None:
        rating = pl.Series("rating", [None] * n, dtype=pl.Float64)
    else:
        rating = df[cols.rating].cast(pl.Float64, strict=False)
    bad_ts = ts.is_null()
    # a rating that is present but not a number; an absent rating is just implicit feedback
    bad_rating = ~bad_ts & rating.is_null()
    bad_rating &= df[cols.rating].is_not_null() if cols.rating else False
    add_count(counts, f"rows whose {cols.timestamp!r} is missing or not a time", int(bad_ts.sum()))
    add_count(counts, f"rows whose {cols.rating!r} is not a number", int(bad_rating.sum()))
    if n > 0 and bool(bad_ts.all()):
        raise InputError(
            f"{SOURCE}: {path} column {cols.timestamp!r} holds no readable timestamp "
            f"(first value {df[cols.timestamp][0]!r})"
        )
    out = pl.DataFrame(
        {
            "user": _ids(df[cols.user]),
            "item": _ids(df[cols.item]),
            "timestamp": ts,
            "rating": rating,
        }
    )
    return out.filter(~(bad_ts | bad_rating))


def _ids(s: pl.Series) -> pl.Series:
    """Raw ids as strings; integral floats (pandas' nullable ints, NaN = missing) lose their
    '.0', and a NaN id is missing (null), never an id "NaN"."""
    if s.dtype.is_float():
        s = s.fill_nan(None)
        if bool((s.drop_nulls() % 1 == 0).all()):
            s = s.cast(pl.Int64)
    if s.dtype == pl.String:
        return s.str.strip_chars()
    return s.cast(pl.String)


# Date-time text formats tried on every value (not only the first value's format).
TIME_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S%.f%z",
                "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S",
                "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M",
                "%Y-%m-%d", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d")


def _timestamps(s: pl.Series, path: Path) -> pl.Series:
    """Int64 seconds (or whatever unit the integers use) from any common encoding."""
    dtype = s.dtype
    if dtype.is_integer():
        return s.cast(pl.Int64)
    if dtype.is_float():
        return s.fill_nan(None).cast(pl.Int64, strict=False)
    if dtype == pl.Date:
        return s.cast(pl.Datetime("ms")).dt.epoch("s")
    if isinstance(dtype, pl.Datetime):
        return s.dt.epoch("s")
    if dtype == pl.String:
        text = s.str.strip_chars()
        frame = pl.DataFrame({"t": text})
        iso = pl.col("t").str.replace(r"Z$", "+00:00")  # "…Z" is UTC
        return frame.select(
            pl.coalesce(
                pl.col("t").cast(pl.Int64, strict=False),
                pl.col("t").cast(pl.Float64, strict=False).cast(pl.Int64, strict=False),
                *(iso.str.to_datetime(format=f, strict=False, time_unit="us", time_zone="UTC")
                  .dt.epoch("s") for f in TIME_FORMATS),
            )
        ).to_series()
    raise InputError(f"{SOURCE}: {path} timestamp column {s.name!r} has type {dtype}")


def read_items(path: Path, cols: TableColumns) -> pl.DataFrame:
    """The item text table from cols.item_file (text columns as strings), or ids only."""
    if cols.item_file is None:
        return pl.DataFrame(schema={"item": pl.String})
    item_path = cols.item_file
    if not item_path.is_absolute() and not item_path.exists():
        item_path = path.parent / item_path  # relative to the interactions file
    require_file(item_path, SOURCE, "columns.item_file")
    if cols.text:
        text = [c for c in cols.text if c != cols.item_key]
    else:
        text = [c for c in _columns(item_path) if c != cols.item_key]
    df = select(item_path, [cols.item_key, *text])
    return pl.DataFrame(
        [_ids(df[cols.item_key]).alias("item"), *(_as_text(df[c], item_path) for c in text)]
    )


def _as_text(s: pl.Series, path: Path) -> pl.Series:
    """A text attribute as String; list cells are joined with ", "."""
    if isinstance(s.dtype, pl.List):
        return s.list.eval(pl.element().cast(pl.String)).list.join(", ").alias(s.name)
    try:
        return s.cast(pl.String)
    except pl.exceptions.PolarsError:
        raise InputError(
            f"{SOURCE}: {path} column {s.name!r} of type {s.dtype} cannot be item text"
        ) from None
