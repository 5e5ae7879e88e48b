"""MovieLens-1M loader on `::`-separated, latin-1 encoded .dat fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.data.config import DataConfig
from pipeline.data.prepare import prepare_dataset
from pipeline.data.sources import movielens1m
from pipeline.errors import InputError

RATINGS = """\
1::1193::5::978300760
1::661::3::978302109
1::914::3::978301968
2::1193::4::978298413
2::661::1::978299000
2::914::5::978298000
2::3408::bad::978298001
this line is broken
"""
MOVIES = """\
661::James and the Giant Peach (1996)::Animation|Children's|Musical
914::My Fair Lady (1964)::Musical|Romance
1193::One Flew Over the Cuckoo's Nest (1975)::Drama
3408::Café au lait (Métisse) (1993)::Comedy
260::Star Wars: Episode IV - A New Hope (1977)::Action|Adventure|Fantasy|Sci-Fi
"""


def write_ml1m(folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "ratings.dat").write_bytes(RATINGS.encode("latin-1"))
    (folder / "movies.dat").write_bytes(MOVIES.encode("latin-1"))
    return folder


def test_ml1m_ratings_and_movies(tmp_path: Path) -> None:
    raw = movielens1m.load(DataConfig(source="movielens-1m", path=write_ml1m(tmp_path)), tmp_path)
    assert raw.counts == {
        "ratings.dat lines without 4 '::'-separated fields": 1,
        "ratings.dat lines with a non-numeric rating or timestamp": 1,
    }
    assert raw.interactions.height == 6
    assert raw.interactions["rating"].to_list() == [5.0, 3, 3, 4, 1, 5]
    movies = {r["item"]: r for r in raw.items.to_dicts()}
    assert movies["3408"] == {
        "item": "3408",
        "title": "Café au lait (Métisse)",
        "year": "1993",
        "genres": "Comedy",
    }
    assert movies["260"]["title"] == "Star Wars: Episode IV - A New Hope"
    assert movies["661"]["genres"] == "Animation, Children's, Musical"


def test_ml1m_prepared_order(tmp_path: Path) -> None:
    cfg = DataConfig(source="movielens-1m", path=write_ml1m(tmp_path / "ml-1m"))
    ds = prepare_dataset(cfg, tmp_path / "data")
    assert ds.meta["counts"] == {"users": 2, "items": 3, "interactions": 6}
    assert ds.items["raw_id"].to_list() == ["661", "914", "1193"]  # numeric order
    # user 1: 1193 (…760), 914 (…968), 661 (…2109); user 2: 914, 1193, 661
    assert [s.tolist() for s in ds.sequences] == [[3, 2, 1], [2, 3, 1]]
    assert ds.items.filter(raw_id="914")["title"].item() == "My Fair Lady"


def test_ml1m_missing_movies(tmp_path: Path) -> None:
    write_ml1m(tmp_path)
    (tmp_path / "movies.dat").unlink()
    with pytest.raises(InputError, match=r"movies.dat does not exist"):
        movielens1m.load(DataConfig(source="movielens-1m", path=tmp_path), tmp_path)


def test_ml1m_wrong_file(tmp_path: Path) -> None:
    write_ml1m(tmp_path)
    (tmp_path / "ratings.dat").write_text("user,item,rating\n1,2,3\n")
    with pytest.raises(InputError, match="no line has 4 '::'-separated fields"):
        movielens1m.load(DataConfig(source="movielens-1m", path=tmp_path), tmp_path)
