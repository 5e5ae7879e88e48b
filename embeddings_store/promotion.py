"""Promotion: one version per dataset carries a tag (`production` by default), moved only
when a candidate beats the holder on a validation figure, with the evidence kept.

The store knows nothing of models: a promotion is a version, a metric name, a value (higher
is better) and an evidence mapping (run ids, seeds, …) the caller supplies. The record lives
in `<root>/<dataset>/PROMOTIONS-<tag>.json` (a history, newest last); the tag itself is an
ordinary tag of the winning version's kind, so downstream jobs read
`<dataset>/items/<name>@production`. `rollback` gives the tag back to the previous holder.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embeddings_store.atomic import atomic_write_text
from embeddings_store.errors import StoreError


@dataclass(frozen=True)
class Decision:
    moved: bool
    holder: dict | None  # the record that holds the tag after the call
    reason: str


def _history_path(root: Path, dataset: str, tag: str) -> Path:
    return Path(root) / dataset / f"PROMOTIONS-{tag}.json"


def history(store, dataset: str, tag: str = "production") -> list[dict]:
    path = _history_path(store.root, dataset, tag)
    if not path.is_file():
        return []
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:
        raise StoreError(f"{path}: unreadable promotion history ({type(e).__name__})") from e
    if not isinstance(records, list):
        raise StoreError(f"{path}: promotion history must be a list")
    return records


def holder(store, dataset: str, tag: str = "production") -> dict | None:
    """The record of the version that holds `tag` for `dataset` now, or None."""
    records = history(store, dataset, tag)
    return records[-1] if records else None


def _write(store, dataset: str, tag: str, records: list[dict]) -> None:
    atomic_write_text(_history_path(store.root, dataset, tag), json.dumps(records, indent=2))


def _retag(store, new_ref: str, old_ref: str | None, tag: str) -> None:
    if old_ref is not None:
        old = store.resolve(old_ref)
        new = store.resolve(new_ref)
        if old.kind != new.kind:  # the tag lives in one kind at a time
            try:
                store.untag(old.dataset, old.kind, tag)
            except StoreError:
                pass
    store.tag(new_ref, tag, force=True)


def promote(store, ref: str, metric: str, value: float, evidence: dict[str, Any] | None = None,
            tag: str = "production", force: bool = False) -> Decision:
    """Give `tag` to `ref` if its `value` of `metric` beats the holder's (same metric), or
    when nothing holds it yet, or with `force`. Never on a tie."""
    version = store.resolve(ref)
    exact = str(version)
    current = holder(store, version.dataset, tag)
    if current is not None and current["ref"] == exact:
        return Decision(False, current, f"{exact} already holds @{tag}")
    if current is not None and not force:
        if current["metric"] != metric:
            raise StoreError(f"@{tag} of {version.dataset} was won on {current['metric']}, "
                             f"not {metric}: compare like with like (or force)")
        if not value > current["value"]:
            return Decision(False, current, f"{exact} has {metric} {value:.4f}, not above "
                                            f"{current['value']:.4f} of {current['ref']}")
    record = {"ref": exact, "metric": metric, "value": float(value),
              "evidence": evidence or {}, "promoted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                      time.gmtime())}
    _retag(store, exact, current["ref"] if current else None, tag)
    _write(store, version.dataset, tag, [*history(store, version.dataset, tag), record])
    return Decision(True, record, f"{exact} now holds @{tag}")


def rollback(store, dataset: str, tag: str = "production") -> Decision:
    """Give `tag` back to the previous holder (the latest record is dropped)."""
    records = history(store, dataset, tag)
    if len(records) < 2:
        raise StoreError(f"{dataset}: no earlier @{tag} to roll back to")
    previous, dropped = records[-2], records[-1]
    _retag(store, previous["ref"], dropped["ref"], tag)
    _write(store, dataset, tag, records[:-1])
    return Decision(True, previous, f"{previous['ref']} holds @{tag} again "
                                    f"(was {dropped['ref']})")
