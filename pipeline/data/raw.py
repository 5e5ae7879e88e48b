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
        self.interactions = self.interactions.select(
            [pl.col(c).cast(t) for c, t in INTERACTION_SCHEMA.items()]
        )
        if "item" not in self.items.columns:
            raise InputError(f"{self.source}: item table lacks column 'item'")
        self.items = self.items.with_columns(pl.col("item").cast(pl.String))

    @property
    def text_columns(self) -> list[str]:
        return [c for c in self.items.columns if c != "item"]
