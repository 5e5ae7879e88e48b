"""Command-line options shared by several commands, declared once (typer `Annotated` aliases)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DatasetOpt = Annotated[str, typer.Option(
    "--dataset", "-d", help="movielens-100k | source:PATH (lcrec, amazon, yelp, movielens-1m, "
    "table) | a preset in configs/datasets | a YAML file")]
DataDirOpt = Annotated[Path, typer.Option(help="where raw and prepared datasets live")]
StoreOpt = Annotated[Path, typer.Option(envvar="LLM4SRS_STORE", help="embeddings store root")]
RunsDirOpt = Annotated[Path, typer.Option(help="checkpoints and result tables")]
SeedsOpt = Annotated[str, typer.Option(help="comma list of training seeds")]
ResumeOpt = Annotated[bool, typer.Option(help="continue interrupted runs from their last checkpoint")]
RowsJsonOpt = Annotated[bool, typer.Option("--json", help="print result rows as one JSON list")]


def csv_list(value: str) -> list[str]:
    """`a, b,,c` -> ["a", "b", "c"]."""
    return [v.strip() for v in value.split(",") if v.strip()]


def usage_error(msg: str) -> Exception:
    """A user error for `main` to print as one `error:` line (exit 2)."""
    from pipeline.errors import InputError

    return InputError(msg)


def parse_sets(sets: list[str]) -> dict:
    """`--set key=value` pairs -> {key: JSON value, or the raw string}."""
    import json

    out: dict = {}
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise usage_error(f"--set expects key=value, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out
