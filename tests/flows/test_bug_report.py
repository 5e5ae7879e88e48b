"""A bug inside a flow (not a user error) ends with its traceback, then one last line naming
the task that failed and the kept log file (llm4srs/failure.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from llm4srs.cli import main


def test_bug_in_a_task_names_the_task_and_the_log(prefect_harness, tmp_path, monkeypatch,
                                                  capsys):
    import pipeline.train

    def broken(*args, **kwargs):
        raise RuntimeError("index 7 is out of bounds for dimension 0 with size 7")

    monkeypatch.setattr(pipeline.train, "train_srs", broken)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLM4SRS_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setattr(sys, "argv", [
        "llm4srs", "train", "--dataset", "synthetic", "--backbone", "sasrec", "--seeds", "0",
        "--set", "epochs=1", "--set", "model.dim=16", "--set", "model.max_len=20",
        "--data-dir", str(tmp_path / "data"), "--runs-dir", str(tmp_path / "runs")])
    with pytest.raises(SystemExit) as exc:
        main()
    err = capsys.readouterr().err
    assert exc.value.code == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: task 'train-sasrec-srs-s0' failed with RuntimeError: "
                           "index 7 is out of bounds"), last
    assert "Traceback (most recent call last)" in err  # the traceback comes before it
    kept = Path(last.rsplit("full log: ", 1)[1])
    assert kept.parent == tmp_path / "logs" and kept.is_file()
    log = kept.read_text()
    assert "Traceback (most recent call last)" in log and "index 7 is out of bounds" in log
    assert sys.stderr is sys.__stderr__ or not type(sys.stderr).__name__ == "_Tee"


def test_success_and_user_errors_leave_no_log(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLM4SRS_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setattr(sys, "argv", ["llm4srs", "train", "--backbone", "nope"])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    assert capsys.readouterr().err.startswith("error: unknown backbone nope")
    assert not (tmp_path / "logs").exists()
