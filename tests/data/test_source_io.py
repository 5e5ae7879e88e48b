"""Shared loader helpers: text cleaning and counted line streaming."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest

from pipeline.data.sources._io import (
    ColumnBuffer,
    clean_text,
    iter_records,
    join_values,
    parse_json_or_literal,
)
from pipeline.errors import InputError


def test_join_and_clean() -> None:
    assert join_values([["A", "B"], ["A", "C"]], unique=True) == "A, B, C"
    assert join_values([" x ", "", None, 3]) == "x, 3"
    assert join_values([]) is None and join_values("  ") is None
    assert clean_text("<p>Fish &amp; <i>chips</i></p>\n\n ok") == "Fish & chips ok"
    assert clean_text("fits < 5 mm and > 2 mm") == "fits < 5 mm and > 2 mm"
    capped = clean_text("word " * 500, limit=100)
    assert capped.endswith(" …") and len(capped) <= 102


def test_iter_records_counts_and_wrong_file(tmp_path: Path) -> None:
    path = tmp_path / "x.json.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"{\"a\": 1}\n\n{'a': 2}\n\xff\xfe\n[1]\n")
    counts: dict[str, int] = {}
    got = list(iter_records(path, counts, "meta", parse_json_or_literal))
    assert got == [{"a": 1}, {"a": 2}]
    assert counts == {
        "meta lines that are not valid UTF-8": 1,
        "meta lines that do not parse as a JSON object": 1,
    }
    plain = tmp_path / "y.json"
    plain.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match=r"y.json: no line parses as a review record"):
        list(iter_records(plain, {}, "review"))


def test_column_buffer_chunks() -> None:
    buf = ColumnBuffer({"a": pl.String(), "b": pl.Int64()}, chunk_rows=2)
    for i in range(5):
        buf.append(str(i), i)
    df = buf.frame()
    assert df["b"].to_list() == [0, 1, 2, 3, 4] and df.schema["a"] == pl.String
    assert ColumnBuffer({"a": pl.String()}).frame().height == 0
