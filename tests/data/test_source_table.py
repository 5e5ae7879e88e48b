"""The generic table source on CSV and Parquet fixtures with a column mapping."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from pipeline.data.config import DataConfig, TableColumns
from pipeline.data.prepare import prepare_dataset
from pipeline.data.sources import table
from pipeline.errors import InputError

CSV = """\
uid,iid,when,score,comment
007,b,200,4,ok
007,a,100,5,"has, comma"
007,c,300,,no rating
8,a,150,3,x
8,c,50,not-a-number,x
8,b,250,2,x
8,d,never,1,x
"""


def test_csv_with_mapping(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(CSV)
    cols = TableColumns(user="uid", item="iid", timestamp="when", rating="score")
    raw = table.load(DataConfig(source="table", path=path, columns=cols), tmp_path)
    assert raw.counts == {
        "rows whose 'when' is missing or not a time": 1,
        "rows whose 'score' is not a number": 1,
    }
    assert raw.interactions["user"].to_list() == ["007", "007", "007", "8", "8"]  # zeros kept
    assert raw.interactions["rating"].to_list() == [4.0, 5.0, None, 3.0, 2.0]
    assert raw.items.columns == ["item"] and raw.items.height == 0


def test_parquet_with_datetimes_and_item_file(tmp_path: Path) -> None:
    events = pl.DataFrame(
        {
            "user": [1, 1, 1, 2, 2, 2],
            "item": [10, 20, 30, 30, 20, 10],
            "at": [datetime(2020, 1, d) for d in (3, 1, 2, 1, 2, 3)],
            "unused": ["x"] * 6,
        }
    )
    events.write_parquet(tmp_path / "events.parquet")
    pl.DataFrame(
        {
            "sku": [10, 20, 30, 40],
            "name": ["ten", "twenty", "thirty", "forty"],
            "tags": [["a", "b"], [], ["c"], None],
            "weight": [1.5, 2.0, None, 4.0],
        }
    ).write_parquet(tmp_path / "items.parquet")
    cols = TableColumns(
        user="user", item="item", timestamp="at", item_file=Path("items.parquet"), item_key="sku"
    )
    cfg = DataConfig(source="table", path=tmp_path / "events.parquet", columns=cols)
    raw = table.load(cfg, tmp_path)
    assert raw.interactions["timestamp"][0] == 1578009600  # 2020-01-03 UTC
    assert raw.items.columns == ["item", "name", "tags", "weight"]
    assert raw.items.row(0) == ("10", "ten", "a, b", "1.5")
    ds = prepare_dataset(cfg, tmp_path / "data")
    assert [s.tolist() for s in ds.sequences] == [[2, 3, 1], [3, 2, 1]]
    assert ds.items["raw_id"].to_list() == ["10", "20", "30"]  # item 40 never occurs


def test_file_order_when_no_timestamp(tmp_path: Path) -> None:
    path = tmp_path / "seq.csv"
    path.write_text("user_id,item_id\nu,z\nu,y\nu,x\nv,x\nv,z\nv,y\n")
    cols = TableColumns(timestamp=None)
    ds = prepare_dataset(DataConfig(source="table", path=path, columns=cols), tmp_path / "d")
    assert ds.interactions["timestamp"].to_list() == [0, 1, 2, 3, 4, 5]
    assert [s.tolist() for s in ds.sequences] == [[3, 2, 1], [1, 3, 2]]


def test_missing_mapped_columns_are_named(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(CSV)
    cols = TableColumns(user="uid", item="item_id", timestamp="ts")
    with pytest.raises(InputError) as e:
        table.load(DataConfig(source="table", path=path, columns=cols), tmp_path)
    msg = str(e.value)
    assert "events.csv lacks mapped column(s) ['item_id', 'ts']" in msg
    assert "'uid', 'iid', 'when', 'score', 'comment'" in msg and "\n" not in msg


def test_unknown_suffix_and_unreadable_times(tmp_path: Path) -> None:
    (tmp_path / "events.tsv").write_text("user_id\titem_id\n")
    with pytest.raises(InputError, match=r"suffix '.tsv'; expected .parquet or .csv"):
        table.load(DataConfig(source="table", path=tmp_path / "events.tsv"), tmp_path)
    (tmp_path / "events.csv").write_text("user_id,item_id,timestamp\nu,a,soon\nu,b,later\n")
    with pytest.raises(InputError, match=r"'timestamp' holds no readable timestamp"):
        table.load(DataConfig(source="table", path=tmp_path / "events.csv"), tmp_path)
