"""prepare_dataset: k-core, dedup, tie order, fingerprint, one-line errors, atomic output."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.data.config import DataConfig, TableColumns, resolve_dataset
from pipeline.data.prepare import prepare_dataset
from pipeline.errors import InputError


def write_csv(path: Path, rows: list[tuple[str, str, int]]) -> Path:
    path.write_text("user_id,item_id,timestamp\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows))
    return path


def events(seqs: dict[str, list[str]]) -> list[tuple[str, str, int]]:
    return [(u, i, t) for u, items in seqs.items() for t, i in enumerate(items)]


def table(path: Path, **kw: object) -> DataConfig:
    return DataConfig(source="table", path=path, **kw)


def finished(data_dir: Path) -> list[str]:
    """Entries under prepared/: each must be a finished dataset (meta.json last)."""
    prepared = data_dir / "prepared"
    names = sorted(p.name for p in prepared.iterdir()) if prepared.exists() else []
    for name in names:
        assert (prepared / name / "meta.json").is_file(), f"half-written {name}"
    return names


def test_iterative_k_core_needs_several_passes(tmp_path: Path) -> None:
    # Pass 1 drops items z, d, e (one user each), then u3 and u5 (< 3 items left). Only
    # then do x and y fall to one user, and only in pass 2 does u4 fall below 3 items.
    seqs = {
        "u1": ["a", "b", "c"],
        "u2": ["a", "b", "c"],
        "u3": ["c", "d", "e"],
        "u4": ["a", "x", "y"],
        "u5": ["x", "y", "z"],
    }
    path = write_csv(tmp_path / "k.csv", events(seqs))
    ds = prepare_dataset(table(path, user_core=3, item_core=2), tmp_path / "data")
    assert ds.users["raw_id"].to_list() == ["u1", "u2"]
    assert ds.items["raw_id"].to_list() == ["a", "b", "c"]
    assert ds.meta["counts"] == {"users": 2, "items": 3, "interactions": 6}
    dropped = ds.meta["dropped"]
    assert dropped["events of items with < 2 users (k-core)"] == 3 + 2
    assert dropped["events of users with < 3 items (k-core / min length)"] == 1 + 2 + 1
    assert ds.interactions["user_id"].dtype.is_integer()
    assert ds.interactions["item_id"].min() == 1


def test_dedup_keeps_first_event_and_ties_break_by_item(tmp_path: Path) -> None:
    rows = [
        ("u", "a", 1),
        ("u", "b", 2),
        ("u", "a", 3),
        ("u", "c", 4),
        ("v", "c", 7),
        ("v", "a", 7),
        ("v", "b", 7),
    ]
    ds = prepare_dataset(table(write_csv(tmp_path / "d.csv", rows)), tmp_path / "data")
    assert ds.meta["dropped"] == {"repeated (user, item) events": 1}
    u = ds.interactions.filter(user_id=1)
    assert u["item_id"].to_list() == [1, 2, 3] and u["timestamp"].to_list() == [1, 2, 4]
    assert ds.sequences[1].tolist() == [1, 2, 3]  # a, b, c at the same time: by item id


def test_fingerprint_follows_content_only(tmp_path: Path) -> None:
    rows = events({"u": ["a", "b", "c"], "v": ["b", "c", "d"]})
    first = prepare_dataset(table(write_csv(tmp_path / "one.csv", rows)), tmp_path / "d1")
    copy = shutil.copy(tmp_path / "one.csv", tmp_path / "two.csv")
    same = prepare_dataset(table(Path(copy)), tmp_path / "d2")  # other name, same content
    again = prepare_dataset(table(tmp_path / "one.csv"), tmp_path / "d1", force=True)
    assert first.fingerprint == same.fingerprint == again.fingerprint
    rows[-1] = ("v", "e", 2)  # one interaction changes
    changed = prepare_dataset(table(write_csv(tmp_path / "three.csv", rows)), tmp_path / "d3")
    assert changed.fingerprint != first.fingerprint


def test_prepared_folder_is_reused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", events({"u": ["a", "b", "c"]}))
    first = prepare_dataset(table(path), tmp_path / "data")
    second = prepare_dataset(table(path), tmp_path / "data")
    assert first.path == second.path and first.meta["created_at"] == second.meta["created_at"]
    assert finished(tmp_path / "data") == [first.path.name]


def one_line_error(cfg: DataConfig, data_dir: Path) -> str:
    with pytest.raises(InputError) as e:
        prepare_dataset(cfg, data_dir)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_missing_file(tmp_path: Path) -> None:
    msg = one_line_error(table(tmp_path / "absent.csv"), tmp_path / "data")
    assert "absent.csv does not exist" in msg
    assert finished(tmp_path / "data") == []


def test_csv_without_mapped_columns(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("who,what,when\nu,a,1\n")
    msg = one_line_error(table(path), tmp_path / "data")
    assert "lacks mapped column(s) ['user_id', 'item_id', 'timestamp']" in msg
    assert "['who', 'what', 'when']" in msg
    cols = TableColumns(user="who", item="what", timestamp="when", rating="stars")
    assert "['stars']" in one_line_error(table(path, columns=cols), tmp_path / "data")
    assert finished(tmp_path / "data") == []


def test_empty_after_filtering(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "short.csv", events({"u": ["a", "b"], "v": ["a"]}))
    msg = one_line_error(table(path), tmp_path / "data")
    assert "'short' is empty after filtering" in msg and "min_user_len=3" in msg
    assert finished(tmp_path / "data") == []


def test_unknown_source_name() -> None:
    with pytest.raises(InputError) as e:
        resolve_dataset("nope")
    assert "'nope'" in str(e.value) and "\n" not in str(e.value)


def test_crash_while_writing_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    path = write_csv(tmp_path / "c.csv", events({"u": ["a", "b", "c"]}))
    good = prepare_dataset(table(path), tmp_path / "data")

    def crash(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("embeddings_store.atomic.os.rename", crash)
    with pytest.raises(OSError, match="disk full"):
        prepare_dataset(table(path, dedup=False), tmp_path / "data")
    assert finished(tmp_path / "data") == [good.path.name]


def test_concurrent_prepare_of_the_same_config_keeps_the_winner(tmp_path: Path, monkeypatch) -> None:
    """Two processes preparing one dataset: the one that renames second keeps the first's
    folder (same config hash, same content) instead of failing with 'Directory not empty'."""
    import os

    path = write_csv(tmp_path / "r.csv", events({"u": ["a", "b", "c"], "v": ["b", "c", "a"]}))
    real_replace = os.rename

    def other_process_wins(src, dst) -> None:  # the other writer renames just before us
        if not Path(dst).exists():
            shutil.copytree(src, dst)
        real_replace(src, dst)

    monkeypatch.setattr("embeddings_store.atomic.os.rename", other_process_wins)
    ds = prepare_dataset(table(path), tmp_path / "data")
    assert finished(tmp_path / "data") == [ds.path.name]  # no temp folder left behind
    assert ds.meta["counts"]["interactions"] == 6
