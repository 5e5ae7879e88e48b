"""`llm4srs compare` bad input: one line on stderr, exit 2, before any Prefect flow starts."""

from __future__ import annotations

import sys

import pytest

from llm4srs.cli import main


def run_cli(args, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["llm4srs", "compare", *args])
    with pytest.raises(SystemExit) as exc:
        main()
        raise SystemExit(0)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


@pytest.mark.parametrize(("args", "needle"), [
    (["--backbones", "sasrec,pop"], "unknown backbone pop"),
    (["--backbones", ""], "unknown backbone (none)"),
    (["--seeds", "0,x"], "--seeds must be integers"),
    (["--methods", "id,nope"], "unknown method nope"),
    (["--set", "model.bogus=1", "--methods", "id"], "model.bogus"),
    (["--dataset", "nope"], "nope"),
])
def test_compare_bad_input(args, needle, tmp_path, monkeypatch, capsys):
    code, out, err = run_cli([*args, "--store", str(tmp_path / "s"), "--data-dir",
                              str(tmp_path / "d")], monkeypatch, capsys)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1 and out == ""


def test_compare_without_item_embeddings_says_run_embed(tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(["--dataset", "synthetic", "--store", str(tmp_path / "empty")],
                           monkeypatch, capsys)
    assert code == 2 and "llm4srs embed --dataset synthetic" in err


def test_compare_kinds_must_be_item_kinds_in_the_store(store_with_items, monkeypatch, capsys):
    code, _, err = run_cli(["--dataset", "synthetic", "--store", str(store_with_items),
                            "--kinds", "items/semantic-a,items/other"], monkeypatch, capsys)
    assert code == 2 and "items/other is not in the store" in err and "semantic-a" in err
