"""The installed-stack guard (llm4srs/stack.py): a known-broken combination is refused in one
line before any work, faked the way a drifted venv would look (a dist-info that shadows the
real one on PYTHONPATH), through the real console script."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llm4srs import stack

pytestmark = pytest.mark.ops
CLI = Path(sys.executable).with_name("llm4srs")


def fake_dist(site: Path, name: str, version: str) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def run_cli(tmp_path: Path, site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("LLM4SRS_SKIP_VERSION_CHECK", None)
    return subprocess.run([str(CLI), *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)


def test_locked_venv_passes() -> None:
    assert stack.problems() == []
    assert set(stack.declared_ranges()) == set(stack.STACK)


@pytest.mark.parametrize("command", [
    ["embed", "semantic"],
    ["train", "--backbone", "sasrec"],
    ["e4srec"],
    ["compare"],
])
def test_known_broken_pair_refused_in_one_line(tmp_path: Path, command: list[str]) -> None:
    site = tmp_path / "fake-site"
    fake_dist(site, "transformers", "5.24.0")
    work = tmp_path / "work"
    work.mkdir()
    started = time.monotonic()
    res = run_cli(work, site, *command, "--store", "store", "--data-dir", "data")
    elapsed = time.monotonic() - started
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1 and lines[0].startswith("error: installed LLM stack:"), res.stderr
    peft = stack.installed("peft")
    assert f"transformers 5.24.0 with peft {peft} is known to fail" in lines[0]
    assert "make setup" in lines[0]
    assert res.stdout == ""
    assert list(work.iterdir()) == []  # no store, data, runs or .prefect folder
    assert elapsed < 5, f"the refusal took {elapsed:.1f} s"


def test_out_of_range_and_missing_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from packaging.version import Version

    fake = {"torch": "2.13.0+cpu", "transformers": "5.23.0", "peft": None,
            "sentence-transformers": "7.0.0"}
    monkeypatch.setattr(stack, "installed",
                        lambda name: Version(fake[name]) if fake.get(name) else None)
    found = stack.problems()
    assert "peft is not installed" in found
    assert any(p.startswith("sentence-transformers 7.0.0 is outside") for p in found)
    assert not any(p.startswith(("torch", "transformers")) for p in found)  # +cpu is in range


def test_skip_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stack, "problems", lambda: ["x 1 is outside llm4srs's range <1"])
    from pipeline.errors import InputError

    with pytest.raises(InputError, match="x 1 is outside"):
        stack.check()
    monkeypatch.setenv("LLM4SRS_SKIP_VERSION_CHECK", "1")
    stack.check()
