"""The one input-normalisation step (pipeline/data/raw.normalise + the table source's id and
time parsing): ids, times and ratings that used to be silently wrong."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest

from pipeline.data.config import DataConfig, TableColumns
from pipeline.data.prepare import prepare_dataset
from pipeline.errors import InputError


def prepare(path: Path, tmp_path: Path, **kw: object):
    return prepare_dataset(DataConfig(source="table", path=path, **kw), tmp_path / "data")


def three_users(times: list[object]) -> dict[str, list]:
    return {"user_id": ["a"] * 3 + ["b"] * 3 + ["c"] * 3,
            "item_id": ["x", "y", "z", "y", "z", "x", "z", "x", "y"], "timestamp": times}


def test_blank_ids_are_dropped_and_counted(tmp_path: Path) -> None:
    rows = three_users(list(range(9)))
    rows["user_id"] += ["   "]
    rows["item_id"] += ["x"]
    rows["timestamp"] += [9]
    path = tmp_path / "blank.csv"
    pl.DataFrame(rows).write_csv(path)
    ds = prepare(path, tmp_path)
    assert sorted(ds.users["raw_id"].to_list()) == ["a", "b", "c"]  # no user ""
    assert ds.meta["counts"]["interactions"] == 9


def test_float_ids_with_nan_are_missing_not_an_item(tmp_path: Path) -> None:
    """A pandas export: integer ids as floats, NaN where missing."""
    rows = three_users(list(range(9)))
    rows["item_id"] = [1.0, 2.0, 3.0, 2.0, 3.0, 1.0, 3.0, 1.0, 2.0, math.nan]
    rows["user_id"] += ["a"]
    rows["timestamp"] += [10]
    path = tmp_path / "floats.parquet"
    pl.DataFrame(rows).write_parquet(path)
    ds = prepare(path, tmp_path)
    assert sorted(ds.items["raw_id"].to_list()) == ["1", "2", "3"]  # not "1.0", not "NaN"
    assert ds.meta["counts"]["interactions"] == 9


def test_every_iso_variant_in_one_column_is_parsed(tmp_path: Path) -> None:
    times = ["2020-01-01T00:00:01Z", "2020-01-01 00:00:02", "2020-01-01T00:00:03.5+00:00",
             "2020-01-02", "2020-01-02T00:00:05", "2020-01-02 00:00:06+00:00",
             "2020/01/03 00:00:07", "2020-01-03T00:00:08.250", "2020-01-03 00:00"]
    path = tmp_path / "iso.csv"
    pl.DataFrame(three_users(times)).write_csv(path)
    ds = prepare(path, tmp_path)
    assert ds.meta["counts"]["interactions"] == 9  # none dropped (62% were, before)
    assert not ds.meta["dropped"]


def test_mixed_epoch_units_are_refused(tmp_path: Path) -> None:
    times = [1_600_000_000, 1_600_000_100, 1_600_000_200_000, 1_600_000_300, 1_600_000_400,
             1_600_000_500, 1_600_000_600, 1_600_000_700, 1_600_000_800]
    path = tmp_path / "mixed.csv"
    pl.DataFrame(three_users(times)).write_csv(path)
    with pytest.raises(InputError, match=r"mixes epoch seconds \(8 rows\) and milliseconds \(1 rows\)"):
        prepare(path, tmp_path)


def test_nan_rating_never_passes_the_threshold(tmp_path: Path) -> None:
    rows = three_users(list(range(9)))
    rows["user_id"] += ["c"]
    rows["item_id"] += ["w"]
    rows["timestamp"] += [9]
    rows["rating"] = [5.0] * 9 + [math.nan]
    path = tmp_path / "ratings.parquet"
    pl.DataFrame(rows).write_parquet(path)
    ds = prepare(path, tmp_path, columns=TableColumns(rating="rating"), rating_threshold=4.0)
    assert "w" not in ds.items["raw_id"].to_list()  # the NaN-rated event is not a positive
    assert ds.meta["dropped"]["rows without a rating, missing or NaN (rating_threshold is set)"] == 1


def test_a_user_yaml_path_is_relative_to_the_yaml(tmp_path: Path, monkeypatch) -> None:
    from pipeline.data.config import PRESET_DIR, resolve_dataset

    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "mine.yaml").write_text("source: lcrec\npath: files/Shop\nname: mine\n")
    monkeypatch.chdir(tmp_path)  # neither the working directory nor the checkout
    assert resolve_dataset("cfg/mine.yaml").path == (tmp_path / "cfg" / "files" / "Shop").resolve()
    preset = resolve_dataset("amazon-scientific")  # the repo's presets: relative to the checkout
    assert preset.path == (PRESET_DIR.parents[1] / "../shared/data/amazon-scientific").resolve()


def test_a_killed_prepare_leaves_nothing_the_next_one_keeps(tmp_path: Path) -> None:
    import subprocess

    prepared = tmp_path / "data" / "prepared"
    prepared.mkdir(parents=True)
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = prepared / f".mine-0123.tmp-{gone.pid}-abcd"
    (stale / "interactions.parquet").parent.mkdir()
    (stale / "interactions.parquet").write_bytes(b"half")
    live = prepared / f".mine-0123.tmp-{__import__('os').getpid()}-efgh"
    live.mkdir()
    path = tmp_path / "ok.csv"
    pl.DataFrame(three_users(list(range(9)))).write_csv(path)
    prepare(path, tmp_path)
    assert not stale.exists() and live.exists()  # a live writer's folder is never touched
