"""Version references: ``[dataset/]entity/name[@version|@tag|@current|@latest]``.

The dataset may be left out when exactly one dataset in the store has that kind, which
keeps the everyday CLI short (``store show items/tslrec``) without ever guessing between
two datasets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from embeddings_store import layout
from embeddings_store.errors import StoreError


@dataclass(frozen=True)
class VersionRef:
    """One resolved, existing version."""

    dataset: str
    kind: str
    version: str
    path: Path

    def __str__(self) -> str:
        return f"{self.dataset}/{self.kind}@{self.version}"


@dataclass(frozen=True)
class ParsedRef:
    dataset: str | None
    kind: str
    selector: str | None  # None means "current"


def parse_ref(text: str, dataset: str | None = None) -> ParsedRef:
    """Split a reference string; ``dataset`` (e.g. ``--dataset``) fills in a missing one."""
    body, _, selector = text.strip().partition("@")
    parts = [p for p in body.split("/")]
    if len(parts) == 3:
        ds, kind = parts[0], "/".join(parts[1:])
        if dataset is not None and dataset != ds:
            raise StoreError(
                f"reference {text!r} names dataset {ds!r} but --dataset is {dataset!r}"
            )
    elif len(parts) == 2:
        ds, kind = dataset, body
    else:
        raise StoreError(
            f"invalid reference {text!r}: expected [dataset/]entity/name[@version|@tag|@current]"
        )
    if ds is not None:
        layout.check_name(ds, "dataset")
    layout.split_kind(kind)
    if "@" in text and not (layout.TAG_RE.match(selector) or layout.VERSION_RE.match(selector)):
        raise StoreError(f"invalid reference {text!r}: bad selector after '@'")
    return ParsedRef(ds, kind, selector or None)


def datasets_with_kind(root: Path, kind: str) -> list[str]:
    """Datasets under ``root`` holding at least one complete version of ``kind``."""
    if not root.is_dir():
        return []
    found = []
    for d in sorted(root.iterdir()):
        if (
            d.is_dir()
            and layout.NAME_RE.match(d.name)
            and layout.KindDir(root, d.name, kind).versions()
        ):
            found.append(d.name)
    return found


def kind_dir(root: Path, parsed: ParsedRef) -> layout.KindDir:
    """The kind folder a reference points into, inferring the dataset when unambiguous."""
    if parsed.dataset is not None:
        return layout.KindDir(root, parsed.dataset, parsed.kind)
    candidates = datasets_with_kind(root, parsed.kind)
    if len(candidates) == 1:
        return layout.KindDir(root, candidates[0], parsed.kind)
    if not candidates:
        raise StoreError(f"no dataset in {root} has kind {parsed.kind}")
    raise StoreError(
        f"kind {parsed.kind} exists in several datasets ({', '.join(candidates)}): "
        f"write <dataset>/{parsed.kind} or pass --dataset"
    )


def resolve_selector(kd: layout.KindDir, selector: str | None) -> str:
    """Turn ``None``/current, latest, a version id or a tag into an existing version id."""
    where = f"{kd.dataset}/{kd.kind}"
    versions = kd.versions()
    if not versions:
        raise StoreError(f"{where}: no versions in {kd.root}")
    if selector in (None, "current"):
        current = kd.read_current()
        if current is None:
            raise StoreError(f"{where}: no CURRENT version (use @latest or an explicit version)")
        if current not in versions:
            raise StoreError(f"{where}: CURRENT names {current}, which is missing")
        return current
    if selector == "latest":
        return versions[-1]
    if layout.VERSION_RE.match(selector):
        if selector not in versions:
            raise StoreError(f"{where}: no version {selector}")
        return selector
    tags = kd.read_tags()
    if selector in tags:
        if tags[selector] not in versions:
            raise StoreError(f"{where}: tag {selector} names {tags[selector]}, which is missing")
        return tags[selector]
    raise StoreError(f"{where}: {selector!r} is neither a version id nor a tag")


def resolve(root: Path, text: str, dataset: str | None = None) -> VersionRef:
    parsed = parse_ref(text, dataset)
    kd = kind_dir(root, parsed)
    version = resolve_selector(kd, parsed.selector)
    return VersionRef(kd.dataset, kd.kind, version, kd.version_path(version))
