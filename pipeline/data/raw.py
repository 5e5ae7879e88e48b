"""The shape every source loader returns before filtering and id remapping."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from pipeline.errors import InputError

# interactions: one row per (user, item, time) event, raw ids as strings.
INTERACTION_SCHEMA: dict[str, pl.DataType] = {
    "user": pl.String(),
    "item": pl.String(),
    "timestamp": pl.Int64(),
    "rating": pl.Float64(),  # null for implicit sources
}


# Epoch magnitudes: 2001..2286 in seconds is [1e9, 1e10); each unit is 1000x the last.
EPOCH_UNITS = (("seconds", 1e8, 1e11), ("milliseconds", 1e11, 1e14),
               ("microseconds", 1e14, 1e17), ("nanoseconds", 1e17, float("inf")))


def normalise(interactions: pl.DataFrame, source: str, counts: dict[str, int]) -> pl.DataFrame:
    """The one input-normalisation step every source's rows pass through.

    - ids: surrounding whitespace stripped; an id that is then empty becomes null (prepare
      drops null ids and reports the count);
    - ratings: NaN is a missing rating (null); with a rating threshold, prepare drops and
      counts rows without one;
    - timestamps: one epoch unit per column; a column mixing seconds and milliseconds
      (say) would silently reorder every sequence, so it is refused.
    """
    df = interactions.with_columns(
        [pl.col(c).str.strip_chars().replace("", None).alias(c) for c in ("user", "item")]
    )
    blank = int(df["user"].is_null().sum() + df["item"].is_null().sum()
                - interactions["user"].is_null().sum() - interactions["item"].is_null().sum())
    if blank:
        counts["rows with a blank user or item id"] = counts.get(
            "rows with a blank user or item id", 0) + blank
    df = df.with_columns(pl.col("rating").fill_nan(None))  # NaN = no rating (see prepare)
    ts = df["timestamp"].drop_nulls()
    bands = [(name, int(((ts >= lo) & (ts < hi)).sum())) for name, lo, hi in EPOCH_UNITS]
    seen = [(name, n) for name, n in bands if n]
    if len(seen) > 1:
        (a, na), (b, nb) = seen[0], seen[1]
        raise InputError(f"{source}: the timestamp column mixes epoch {a} ({na} rows) and {b} "
                         f"({nb} rows); convert it to one unit first (sequence order depends on it)")
    return df


@dataclass
class RawData:
    """What a source loader produces.

    `interactions` has exactly the columns of INTERACTION_SCHEMA. `items` has a String
    column `item` (raw id) plus one String column per text attribute (title, brand, …);
    it may miss items that appear in interactions (their text is then null) and may hold
    items that never occur (they are dropped). `counts` reports rows a loader skipped and
    why, e.g. {"reviews without a user id": 3}; skipped rows are never silent.
    """

    name: str
    source: str
    interactions: pl.DataFrame
    items: pl.DataFrame
    counts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, cfg, interactions: pl.DataFrame, items: pl.DataFrame,
           counts: dict[str, int]) -> RawData:
        """A loader's result for `cfg` (a DataConfig: its dataset name and source)."""
        return cls(name=cfg.dataset_name, source=cfg.source, interactions=interactions,
                   items=items, counts=counts)

    def __post_init__(self) -> None:
        missing = [c for c in INTERACTION_SCHEMA if c not in self.interactions.columns]
        if missing:
            raise InputError(f"{self.source}: interactions lack column(s) {missing}")
        self.interactions = normalise(
            self.interactions.select([pl.col(c).cast(t) for c, t in INTERACTION_SCHEMA.items()]),
            self.source, self.counts)
        if "item" not in self.items.columns:
            raise InputError(f"{self.source}: item table lacks column 'item'")
        self.items = self.items.with_columns(pl.col("item").cast(pl.String))

    @property
    def text_columns(self) -> list[str]:
        return [c for c in self.items.columns if c != "item"]
