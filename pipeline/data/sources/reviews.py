"""Review rows (user, item, time, rating) streamed from a JSON-lines review file, with the
rows it cannot use counted by reason (the Amazon and Yelp readers share it)."""

from __future__ import annotations

from typing import Any

import polars as pl

from pipeline.data.sources._io import ColumnBuffer, add_count, as_id, rating_or_skip


class ReviewBuffer(ColumnBuffer):
    """(user, item, time, rating) rows of a review file. A row without a user, item or time,
    or whose rating is neither a number nor missing, is skipped and counted by reason."""

    def __init__(self, time_column: str, time_dtype: pl.DataType,
                 incomplete: str, bad_rating: str) -> None:
        super().__init__({"user": pl.String(), "item": pl.String(), time_column: time_dtype,
                          "rating": pl.Float64()})
        self.reasons = (incomplete, bad_rating)
        self.skipped = [0, 0]

    def add(self, user: Any, item: Any, time: Any, rating: Any) -> None:
        """Raw field values; an id that is not a non-empty string goes through `as_id`
        (numbers become strings, blanks None) — the slow path, taken by odd lines only."""
        if type(user) is not str or not user:
            user = as_id(user)
        if type(item) is not str or not item:
            item = as_id(item)
        if user is None or item is None or time is None:
            self.skipped[0] += 1
            return
        value, ok = rating_or_skip(rating)
        if not ok:
            self.skipped[1] += 1
            return
        self.append(user, item, time, value)

    def counted(self, counts: dict[str, int]) -> pl.DataFrame:
        """The rows as one frame; the skipped ones added to `counts`."""
        for reason, n in zip(self.reasons, self.skipped, strict=True):
            add_count(counts, reason, n)
        return self.frame()
