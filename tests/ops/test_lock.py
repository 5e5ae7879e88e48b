"""The lock files agree with pyproject.toml: every declared dependency is pinned, inside its
range, with hashes, and both FAISS builds never share a lock."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
REQ = ROOT / "requirements"


def pins(lock: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes)."""
    out: dict[str, tuple[str, int]] = {}
    name = None
    for line in lock.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line)
        if m:
            name = canonicalize_name(m.group(1))
            out[name] = (m.group(2), 0)
        elif name and line.strip().startswith("--hash=sha256:"):
            out[name] = (out[name][0], out[name][1] + 1)
    return out


def declared(extra: str) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = project["dependencies"] + project["optional-dependencies"][extra] + \
        project["optional-dependencies"]["dev"]
    return [Requirement(r) for r in names]


@pytest.mark.parametrize("flavour", ["cpu", "gpu"], ids=["cpu-lock", "cuda-lock"])
def test_every_declared_dependency_is_pinned_in_range_with_hashes(flavour: str) -> None:
    lock = pins(REQ / f"{flavour}.lock")
    for req in declared(flavour):
        name = canonicalize_name(req.name)
        assert name in lock, f"{flavour}.lock does not pin {name}"
        version, hashes = lock[name]
        assert req.specifier.contains(Version(version).public, prereleases=True), \
            f"{flavour}.lock pins {name}=={version}, outside pyproject's {req.specifier}"
        assert hashes >= 1, f"{flavour}.lock: {name} has no hash"
    assert all(h >= 1 for _, h in lock.values())
    other = "faiss-gpu" if flavour == "cpu" else "faiss-cpu"
    assert other not in lock


def test_torch_lock_is_the_main_locks_torch() -> None:
    for flavour in ("cpu", "gpu"):
        assert pins(REQ / f"torch-{flavour}.lock")["torch"] == pins(REQ / f"{flavour}.lock")["torch"]
    assert pins(REQ / "cpu.lock")["torch"][0].endswith("+cpu")


def test_models_lock_pins_the_packaged_models() -> None:
    from pipeline.llm.sources import PACKAGE_OF

    wheels = {canonicalize_name(w) for _, w in PACKAGE_OF.values()}
    assert set(pins(REQ / "models.lock")) == wheels
