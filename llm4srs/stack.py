"""Is the installed LLM stack a combination that works? Answered from package metadata alone.

`make setup` installs exactly `requirements/cpu.lock`, which passed the tests. A venv that
drifted (a `pip install -U`, an old venv, a hand-made environment) can hold a combination
that fails only after minutes of work: transformers 5.24 with peft 0.21.2 died at SCFT after
ten minutes of encoding (issue 14). This check reads installed versions with
`importlib.metadata` (no package is imported; a few milliseconds) and runs before `embed`,
`train` and `e4srec` do anything else.

Two kinds of rule:
- the ranges llm4srs declares for the stack (pyproject.toml, read back from the installed
  distribution's metadata, so they are written once);
- known-broken pairs that the ranges alone cannot express (BREAKS), with the reason.

`LLM4SRS_SKIP_VERSION_CHECK=1` skips it (for someone trying a newer stack on purpose).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import metadata

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

# The packages whose versions decide whether fine-tuning and encoding work.
STACK = ("torch", "transformers", "peft", "sentence-transformers")
FIX = "run `make setup` to restore the locked versions (requirements/cpu.lock)"


@dataclass(frozen=True)
class Break:
    """`when` installed together with `with_` is known to fail, for `why`."""

    when: tuple[str, str]  # (package, specifier) e.g. ("transformers", ">=5.24")
    with_: tuple[str, str]  # ("peft", "<0.22")
    why: str


BREAKS = (
    Break(("transformers", ">=5.24"), ("peft", "<0.22"),
          "transformers >= 5.24 needs peft >= 0.22 to add a LoRA adapter: SCFT fails"),
)


def installed(name: str) -> Version | None:
    try:
        return Version(metadata.version(name))
    except metadata.PackageNotFoundError:
        return None
    except InvalidVersion:
        return None


def declared_ranges() -> dict[str, SpecifierSet]:
    """The stack's ranges as llm4srs declares them (its installed metadata, from pyproject)."""
    try:
        reqs = metadata.requires("llm4srs") or []
    except metadata.PackageNotFoundError:
        return {}
    out: dict[str, SpecifierSet] = {}
    for line in reqs:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        if name in STACK and req.marker is None:
            out[name] = req.specifier
    return out


def problems() -> list[str]:
    """Each thing wrong with the installed stack, as a phrase naming packages and versions."""
    found = {name: installed(name) for name in STACK}
    out = [f"{name} is not installed" for name, v in found.items() if v is None]
    named: set[str] = set()
    for brk in BREAKS:
        (a, a_spec), (b, b_spec) = brk.when, brk.with_
        va, vb = installed(a), installed(b)
        if va and vb and SpecifierSet(a_spec).contains(va, prereleases=True) and \
                SpecifierSet(b_spec).contains(vb, prereleases=True):
            out.append(f"{a} {va} with {b} {vb} is known to fail ({brk.why})")
            named.update((a, b))
    for name, spec in declared_ranges().items():
        v = found.get(name)
        if name in named:
            continue
        # A local version label (torch 2.13.0+cpu) is the same release for the range.
        if v is not None and not spec.contains(Version(v.public), prereleases=True):
            out.append(f"{name} {v} is outside llm4srs's range {spec}")
    if installed("faiss-cpu") and installed("faiss-gpu"):
        out.append(f"faiss-cpu {installed('faiss-cpu')} and faiss-gpu {installed('faiss-gpu')} "
                   "are both installed and overwrite each other's `faiss` package")
    return out


def check() -> None:
    """Raise InputError (one line, exit 2) when the installed stack is known not to work."""
    if os.environ.get("LLM4SRS_SKIP_VERSION_CHECK", "").lower() in ("1", "true", "yes"):
        return
    found = problems()
    if found:
        from pipeline.errors import InputError

        raise InputError(f"installed LLM stack: {'; '.join(found)}; {FIX}")
