"""The LC-Rec / UniSRec JSON format: `<Name>.inter.json` and `<Name>.item.json`.

`.inter.json` maps a user index (string key) to the time-ordered list of its item
indices; `.item.json` maps an item index (string key) to its text fields (title,
description, brand, categories; strings or lists). There are no raw timestamps, so an
event's timestamp is its position in the user's list (0, 1, 2, …): the order is all a
sequential model needs, and prepare's (user, timestamp) sort then keeps it exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.data.config import DataConfig
from pipeline.data.raw import RawData
from pipeline.data.sources._io import (
    DESCRIPTION_CHARS,
    ColumnBuffer,
    add_count,
    clean_text,
    require_file,
)
from pipeline.errors import InputError

SOURCE = "lcrec"
INTER = ".inter.json"
ITEM = ".item.json"
# Known fields first, in prompt order; any other string/list field follows.
KNOWN_FIELDS = ("title", "brand", "categories", "description")


def load(cfg: DataConfig, cache_dir: Path) -> RawData:
    assert cfg.path is not None
    inter = find_inter(cfg.path, cfg.name)
    item = inter.with_name(inter.name[: -len(INTER)] + ITEM)
    require_file(item, SOURCE, f"the item text beside {inter.name}")
    counts: dict[str, int] = {}
    interactions = read_inter(inter, counts)
    items = read_items(item, counts)
    return RawData.of(cfg, interactions, items, counts)


def find_inter(path: Path, name: str | None) -> Path:
    """The `.inter.json` file itself, or the single one in a folder (or the one `name` picks)."""
    if path.is_file():
        if not path.name.endswith(INTER):
            raise InputError(f"{SOURCE}: {path} is not a <Name>{INTER} file")
        return path
    found = sorted(path.glob(f"*{INTER}"))
    if name is not None and (path / f"{name}{INTER}").is_file():
        return path / f"{name}{INTER}"
    if len(found) == 1:
        return found[0]
    if not found:
        raise InputError(f"{SOURCE}: no *{INTER} file in {path}")
    names = ", ".join(p.name for p in found)
    raise InputError(
        f"{SOURCE}: {path} holds several {INTER} files ({names}); set `name` to pick one"
    )


def _read_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except (UnicodeDecodeError, ValueError) as e:
        raise InputError(f"{path}: not valid JSON ({str(e).splitlines()[0]})") from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply to read") from None
    if not isinstance(data, dict):
        raise InputError(
            f"{path}: expected a JSON object keyed by index, got {type(data).__name__}"
        )
    return data


def read_inter(path: Path, counts: dict[str, int]) -> pl.DataFrame:
    """user → [item, …] into rows (user, item, timestamp=position, rating=null)."""
    users: list[str] = []
    items: list[str] = []
    positions: list[int] = []
    bad_users = bad_items = 0
    for user, seq in _read_object(path).items():
        if not isinstance(seq, list):
            bad_users += 1
            continue
        for pos, item in enumerate(seq):
            item_id = _index(item)
            if item_id is None:
                bad_items += 1
                continue
            users.append(user)
            items.append(item_id)
            positions.append(pos)
    add_count(counts, "users whose value is not a list of items", bad_users)
    add_count(counts, "entries that are not an item index", bad_items)
    if not users:
        raise InputError(f"{path}: no user has a list of item indices")
    return pl.DataFrame(
        {"user": users, "item": items, "timestamp": positions, "rating": None},
        schema={"user": pl.String, "item": pl.String, "timestamp": pl.Int64, "rating": pl.Float64},
    )


def _index(value: Any) -> str | None:
    """An item index (an int, or a string of digits in some exports) as a string."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip().isdigit():
        return value.strip()
    return None


def read_items(path: Path, counts: dict[str, int]) -> pl.DataFrame:
    """item → {field: str | list} into the item text table (lists joined with ", ")."""
    data = _read_object(path)
    records = {k: v for k, v in data.items() if isinstance(v, dict)}
    add_count(
        counts, "item entries that are not an object of text fields", len(data) - len(records)
    )
    extra = sorted({f for r in records.values() for f in r} - set(KNOWN_FIELDS))
    fields = [f for f in KNOWN_FIELDS if any(f in r for r in records.values())] + extra
    buf = ColumnBuffer({"item": pl.String(), **{f: pl.String() for f in fields}})
    for key, rec in records.items():
        buf.append(key, *(_text(f, rec.get(f)) for f in fields))
    return buf.frame()


def _text(field: str, value: Any) -> str | None:
    if field == "description":
        return clean_text(value, sep=" ", limit=DESCRIPTION_CHARS)
    return clean_text(value)
