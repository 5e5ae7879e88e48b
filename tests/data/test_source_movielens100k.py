"""MovieLens-100k loader on a tiny fixture in RecBole's atomic format (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.data.config import DataConfig
from pipeline.data.prepare import prepare_dataset
from pipeline.data.sources import movielens100k
from pipeline.errors import InputError

INTER = """\
user_id:token\titem_id:token\trating:float\ttimestamp:float
196\t242\t3\t881250949
196\t302\t4\t881250950
196\t10\t2\t881250948
22\t242\t5\t881250000
22\t10\t1\t881251000
22\t302\t4\t881250500
"""
ITEM = """\
item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq
10\tRichard III\t1995\tDrama War
242\tKolya\t1996\tComedy
302\tL.A. Confidential\t1997\tCrime Film-Noir Mystery Thriller
267\tunkonwn\tunkonwn\tunknown
"""


def write_atomic(folder: Path) -> Path:
    (folder / "ml-100k.inter").write_text(INTER)
    (folder / "ml-100k.item").write_text(ITEM)
    return folder


def test_ml100k_atomic_fixture(tmp_path: Path) -> None:
    cfg = DataConfig(source="movielens-100k", path=write_atomic(tmp_path))
    raw = movielens100k.load(cfg, tmp_path)
    assert raw.interactions["timestamp"].dtype.is_integer()
    assert raw.items.filter(item="302")["genres"].item() == "Crime, Film-Noir, Mystery, Thriller"
    assert raw.items.filter(item="267")["year"].item() == "unkonwn"
    ds = prepare_dataset(cfg, tmp_path / "data")
    assert ds.users["raw_id"].to_list() == ["22", "196"]
    assert ds.items["raw_id"].to_list() == ["10", "242", "302"]
    assert [s.tolist() for s in ds.sequences] == [[2, 3, 1], [1, 2, 3]]
    assert ds.text_columns == ["title", "year", "genres"]


def test_ml100k_bad_header(tmp_path: Path) -> None:
    write_atomic(tmp_path)
    (tmp_path / "ml-100k.inter").write_text("user_id:token\titem_id:weird\n1\t2\n")
    with pytest.raises(InputError, match="unknown type 'weird'"):
        movielens100k.load(DataConfig(source="movielens-100k", path=tmp_path), tmp_path)
