"""CLI bad input: one line on stderr naming the problem, exit 2, nothing half-written."""

from __future__ import annotations

import sys

import polars as pl
import pytest

from llm4srs.cli import main


def run_cli(args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["llm4srs", *args])
    with pytest.raises(SystemExit) as exc:
        main()
        raise SystemExit(0)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def _prepared_dirs(data_dir):
    root = data_dir / "prepared"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


@pytest.mark.parametrize(
    ("make_args", "needle"),
    [
        (lambda tmp: ["--dataset", f"lcrec:{tmp / 'missing'}"], "does not exist"),
        (lambda tmp: ["--dataset", "nope"], "nope"),
        (lambda tmp: ["--dataset", f"table:{_bad_csv(tmp)}"], "user_id"),
        (lambda tmp: ["--dataset", str(_too_strict(tmp))], "empty after filtering"),
    ],
    ids=["missing-file", "unknown-source", "csv-without-columns", "empty-after-filtering"],
)
def test_prepare_bad_input(make_args, needle, tmp_path, monkeypatch, capsys):
    data_dir = tmp_path / "data"
    code, out, err = run_cli(["prepare", *make_args(tmp_path), "--data-dir", str(data_dir)],
                             monkeypatch, capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and needle in err and err.startswith("error:")
    assert out == ""
    assert _prepared_dirs(data_dir) == []  # nothing half-written


def test_unknown_backbone(monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(["train", "--backbone", "sasrec,transformerxl", "--data-dir",
                            str(tmp_path)], monkeypatch, capsys)
    assert code == 2 and "transformerxl" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "prepared").exists()


def test_bad_override(monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(["train", "--set", "model.dropout=2", "--data-dir", str(tmp_path)],
                           monkeypatch, capsys)
    assert code == 2 and "model.dropout" in err


def test_prepare_json(monkeypatch, capsys, tmp_path):
    csv = tmp_path / "events.csv"
    pl.DataFrame({"user_id": [1, 1, 1, 2, 2, 2], "item_id": [5, 6, 7, 5, 7, 6],
                  "timestamp": [1, 2, 3, 1, 2, 3]}).write_csv(csv)
    code, out, _ = run_cli(["prepare", "--dataset", f"table:{csv}", "--data-dir",
                            str(tmp_path / "d"), "--json"], monkeypatch, capsys)
    import json

    info = json.loads(out)
    assert code == 0 and info["users"] == 2 and info["items"] == 3 and info["interactions"] == 6


def _bad_csv(tmp):
    path = tmp / "bad.csv"
    path.write_text("uid,iid,ts\n1,2,3\n")
    return path


def _too_strict(tmp):
    csv = tmp / "ok.csv"
    pl.DataFrame({"user_id": [1, 1, 1], "item_id": [1, 2, 3], "timestamp": [1, 2, 3]}).write_csv(csv)
    cfg = tmp / "strict.yaml"
    cfg.write_text(f"source: table\npath: {csv}\nuser_core: 50\n")
    return cfg
