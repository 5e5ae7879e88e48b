"""Helpers the file loaders share: line streaming with counted failures, text cleaning.

Raw review dumps are gigabytes, so they are streamed line by line and collected into
columnar chunks; a bad line is skipped and counted (never silently), and a file in
which no line parses at all is the wrong file and stops the run with one line.
"""

from __future__ import annotations

import ast
import gzip
import html
import io
import json
import re
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.errors import InputError

try:  # a fast parser when present (a Prefect dependency); json is the fallback
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None

DESCRIPTION_CHARS = 1000  # item descriptions beyond this add prompt length, not signal
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")  # a tag, not "< 5 mm"
_SPACE = re.compile(r"\s+")
_LITERAL_ERRORS = (ValueError, SyntaxError, TypeError, MemoryError, RecursionError)


def require_file(path: Path, source: str, what: str = "") -> Path:
    """Fail with one line naming the missing file (and what it should hold)."""
    if not path.is_file():
        detail = f" ({what})" if what else ""
        raise InputError(f"{source}: {path} does not exist{detail}")
    return path


def add_count(counts: dict[str, int], reason: str, n: int = 1) -> None:
    if n:
        counts[reason] = counts.get(reason, 0) + n


def open_lines(path: Path) -> Iterator[bytes]:
    """Yield the raw lines of a plain or gzip file; a corrupt gzip is an InputError."""
    try:
        with open(path, "rb") as raw:
            if path.name.endswith(".gz"):  # a buffer over GzipFile: its readline is slow
                with io.BufferedReader(gzip.GzipFile(fileobj=raw), 1 << 20) as f:
                    yield from f
            else:
                yield from raw
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise InputError(f"{path}: not a readable gzip file ({e})") from None


def parse_json(text: str) -> Any:
    """Strict JSON (orjson when installed; json for what orjson refuses, e.g. NaN)."""
    if orjson is not None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def parse_json_or_literal(text: str) -> Any:
    """JSON, else a Python literal: the 2014 Amazon meta lines use single quotes."""
    try:
        return parse_json(text)
    except ValueError:
        return ast.literal_eval(text)


def iter_records(
    path: Path,
    counts: dict[str, int],
    role: str,
    parse: Callable[[str], Any] = parse_json,
) -> Iterator[dict]:
    """Yield each line of `path` that decodes as UTF-8 and parses to a dict.

    Lines that are not UTF-8 or do not parse are counted under `role` (e.g. "review");
    blank lines are not rows and are ignored. If no line parses, the file is the wrong
    one: raise a one-line InputError naming it.
    """
    parsed = bad_utf8 = bad_parse = 0
    for raw in open_lines(path):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            bad_utf8 += 1
            continue
        if not text.strip():
            continue
        try:
            record = parse(text)
        except _LITERAL_ERRORS:
            record = None
        if not isinstance(record, dict):
            bad_parse += 1
            continue
        parsed += 1
        yield record
    add_count(counts, f"{role} lines that are not valid UTF-8", bad_utf8)
    add_count(counts, f"{role} lines that do not parse as a JSON object", bad_parse)
    if parsed == 0:
        raise InputError(
            f"{path}: no line parses as a {role} record "
            f"({bad_parse} unparseable, {bad_utf8} not UTF-8) — is it the right file?"
        )


class ColumnBuffer:
    """Collect rows into polars chunks so millions of rows never sit as Python objects."""

    def __init__(self, schema: dict[str, pl.DataType], chunk_rows: int = 200_000) -> None:
        self.schema = schema
        self.chunk_rows = chunk_rows
        self._rows: list[tuple[Any, ...]] = []
        self._chunks: list[pl.DataFrame] = []

    def append(self, *row: Any) -> None:
        self._rows.append(row)
        if len(self._rows) >= self.chunk_rows:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            chunk = pl.DataFrame(self._rows, schema=self.schema, orient="row")
            self._chunks.append(chunk)
            self._rows = []

    def frame(self) -> pl.DataFrame:
        self._flush()
        if not self._chunks:
            return pl.DataFrame(schema=self.schema)
        return pl.concat(self._chunks, rechunk=True)


def join_values(value: Any, sep: str = ", ", unique: bool = False) -> str | None:
    """Flatten a str / number / (nested) list into one string; empty → None.

    `unique` keeps the first of repeated parts (category paths repeat their roots).
    """
    parts: list[str] = []
    _flatten(value, parts)
    if unique:
        parts = list(dict.fromkeys(parts))
    text = sep.join(p for p in parts if p)
    return text or None


def _flatten(value: Any, out: list[str]) -> None:
    if value is None or isinstance(value, dict):
        return
    if isinstance(value, list | tuple):
        for v in value:
            _flatten(v, out)
    elif isinstance(value, str):
        out.append(value.strip())
    elif isinstance(value, bool):
        out.append(str(value).lower())
    elif isinstance(value, int | float):
        out.append(str(value))


def clean_text(
    value: Any, sep: str = ", ", limit: int | None = None, unique: bool = False
) -> str | None:
    """Join, strip HTML tags and entities, collapse whitespace, optionally cap length.

    Review meta data carries raw HTML and very long descriptions; prompts want neither.
    """
    text = join_values(value, sep, unique)
    if text is None:
        return None
    if "<" in text:
        text = _TAG.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    text = _SPACE.sub(" ", text).strip()
    if limit is not None and len(text) > limit:
        cut = text[:limit]
        space = cut.rfind(" ")
        text = (cut[:space] if space > limit // 2 else cut).rstrip() + " …"
    return text or None


def to_int(value: Any) -> int | None:
    """An integer from int / integral float / digit string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def rating_or_skip(value: Any) -> tuple[float | None, bool]:
    """(rating, ok) of a record's rating field: a float, a numeric string or missing (None)
    are ok; anything else is a row to skip and count."""
    if value is None or type(value) is float:
        return value, True
    rating = to_float(value)
    return rating, rating is not None


def to_float(value: Any) -> float | None:
    """A float from a number or numeric string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def as_id(value: Any) -> str | None:
    """A raw id as a non-empty string (ints allowed), else None."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None
