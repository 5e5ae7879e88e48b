"""Command-line options shared by several commands, declared once (typer `Annotated` aliases)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer


def output_folder(value: Path | None) -> Path | None:
    """A folder option the command writes under: refused up front (one line) when it, or a
    parent on the way to it, is a file, or when the nearest existing folder is read-only."""
    if value is None:
        return value
    try:
        target = value.expanduser().absolute()
        probe = target
        while not probe.exists() and not probe.is_symlink() and probe != probe.parent:
            probe = probe.parent
    except OSError as e:  # a name too long …
        raise typer.BadParameter(f"{value}: {e.strerror or e}") from None
    if probe.is_symlink() and not probe.exists():
        raise typer.BadParameter(f"{value}: {probe} is a broken or looping symlink")
    if not probe.is_dir():
        what = "is a file" if probe == target else f"cannot be made: {probe} is a file"
        raise typer.BadParameter(f"{value} {what}, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise typer.BadParameter(f"{value}: {probe} is not writable")
    return value


DatasetOpt = Annotated[str, typer.Option(
    "--dataset", "-d", help="movielens-100k | source:PATH (lcrec, amazon, yelp, movielens-1m, "
    "table) | a preset in configs/datasets | a YAML file")]
DataDirOpt = Annotated[Path, typer.Option(help="where raw and prepared datasets live",
                                          callback=output_folder)]
StoreOpt = Annotated[Path, typer.Option(envvar="LLM4SRS_STORE", help="embeddings store root",
                                        callback=output_folder)]
RunsDirOpt = Annotated[Path, typer.Option(help="checkpoints and result tables",
                                          callback=output_folder)]
ModelOpt = Annotated[str, typer.Option(
    help="LLM: a packaged one (smollm2, minilm), a Hugging Face id, a local folder or a .gguf file")]
SeedsOpt = Annotated[str, typer.Option(help="comma list of training seeds")]
ResumeOpt = Annotated[bool, typer.Option(help="continue interrupted runs from their last checkpoint")]
RowsJsonOpt = Annotated[bool, typer.Option("--json", help="print result rows as one JSON list")]
ConfigOpt = Annotated[Path | None, typer.Option(
    help="YAML preset replacing the command's default (configs/srs/<backbone>.yaml, configs/e4srec.yaml)")]
SetOpt = Annotated[list[str], typer.Option(
    "--set", help="override a setting, dotted keys reach into sections: --set lr=0.002 --set model.dropout=0.3")]


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
        except RecursionError:
            raise usage_error(f"--set {key}: value nested too deeply") from None
    return out


def parse_seeds(seeds: str) -> list[int]:
    """`--seeds 0,1,2` -> [0, 1, 2]: integers in 0..2**32-1, at least one, no repeats."""
    try:
        values = [int(s) for s in csv_list(seeds)]
    except ValueError:
        raise usage_error(f"--seeds must be integers, got {seeds!r}") from None
    if not values:
        raise usage_error("--seeds: at least one seed")
    bad = [s for s in values if not 0 <= s < 2**32]
    if bad:
        raise usage_error(f"--seeds: {bad[0]} is outside 0..{2**32 - 1} (numpy and torch seeds)")
    if len(set(values)) != len(values):
        raise usage_error(f"--seeds: {seeds!r} repeats a seed")
    return values


def print_rows(path: str, as_json: bool, title: str) -> None:
    """A results Parquet as one JSON list (`--json`) or a markdown table plus its path."""
    import json

    import polars as pl
    import typer

    from pipeline.results import markdown

    rows = pl.read_parquet(path).to_dicts()
    if as_json:
        typer.echo(json.dumps(rows))
    else:
        typer.echo(markdown(rows, f"{rows[0]['dataset']}: {title}"))
        typer.echo(f"\nrows: {path}")
        if Path(path).with_suffix(".html").is_file():
            typer.echo(f"report: {Path(path).with_suffix('.html')}")
        runs = [r for r in dict.fromkeys(row.get("run") for row in rows) if r]
        if runs:
            typer.echo(f"runs (for `llm4srs recommend`): {', '.join(runs)}")
