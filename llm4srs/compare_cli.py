"""``llm4srs compare``: the comparison grid (Prefect flow `compare`) from the shell.

Everything that can be checked before Prefect starts is: backbones, seeds, methods,
overrides (against every backbone's config), and the store's item kinds. User errors raise
InputError, which `llm4srs.cli.main` prints as one `error: …` line (exit 2).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from llm4srs.options import (
    DataDirOpt,
    RunsDirOpt,
    StoreOpt,
    csv_list,
    parse_seeds,
    parse_sets,
    usage_error,
)
from llm4srs.prefect_server import run_flow


def compare(
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="as for `llm4srs train`")] = "movielens-100k",
    backbones: Annotated[str, typer.Option(help="comma list of sasrec,gru4rec,bert4rec")] = "sasrec,gru4rec,bert4rec",
    seeds: Annotated[str, typer.Option(help="comma list of training seeds")] = "0,1,2",
    kinds: Annotated[str | None, typer.Option(help="comma list of item kinds, or 'all' (default: the preset's, items/semantic-* and items/llmemb-rat)")] = None,
    methods: Annotated[str | None, typer.Option(help="comma list of id, llm-init, llmesr, llmesr-nodistill, llmesr-nocross (default: all)")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="override on top of configs/compare.yaml, e.g. --set epochs=50")] = [],  # noqa: B006
    concurrency: Annotated[int | None, typer.Option(min=1, help="cells trained at once (default: the preset's, 2)")] = None,
    store: StoreOpt = Path("store"),
    data_dir: DataDirOpt = Path("data"),
    runs_dir: RunsDirOpt = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help="print the aggregated rows as one JSON list")] = False,
    promote: Annotated[bool, typer.Option(help="give @production to the item version that wins on validation (only if it beats the holder)")] = True,
) -> None:
    """Compare ID-only, LLM-initialised and LLM-ESR backbones over the store's item
    embeddings (Prefect flow `compare`); print the table, then `plot: <png>` last."""
    from llm4srs import stack

    stack.check()
    from pipeline.compare import (
        DEFAULT_ABLATIONS,
        load_preset,
        methods_for,
        select_kinds,
        store_kinds,
    )
    from pipeline.config import load_train_config
    from pipeline.data.config import resolve_dataset

    chosen_backbones = csv_list(backbones)
    from models.srs import BACKBONES  # pop has no item table to compare

    unknown = [b for b in chosen_backbones if b not in BACKBONES]
    if unknown or not chosen_backbones:
        raise usage_error(f"unknown backbone {', '.join(unknown) or '(none)'}; choose from "
                     f"{', '.join(BACKBONES)}")
    seed_list = parse_seeds(seeds)
    overrides = parse_sets(set_)
    preset = load_preset()
    name = resolve_dataset(dataset).dataset_name  # fail fast on a bad spec

    from flows.compare import supports_llmesr

    chosen = methods_for(csv_list(methods) if methods else None, DEFAULT_ABLATIONS, supports_llmesr())
    kind_list: list[str] | None = None
    if any(m != "id" for m in chosen):
        available = store_kinds(store, name, "items")
        if kinds in (None, ""):
            kind_list = select_kinds(available, None, preset.kinds, dataset=dataset)
        elif kinds.strip() == "all":
            kind_list = select_kinds(available, None, dataset=dataset)
        else:
            kind_list = select_kinds(available, csv_list(kinds), dataset=dataset)
    for b in chosen_backbones:  # bad overrides fail here, not an hour in
        load_train_config(b, {**preset.overrides, **overrides})
        if any(m.startswith("llmesr") for m in chosen):
            load_train_config(b, {**preset.overrides, **preset.llmesr_overrides, **overrides},
                              method="llmesr")

    from flows.compare import compare_flow

    out = run_flow(compare_flow, dataset=dataset, backbones=chosen_backbones, seeds=seed_list,
                       kinds=kind_list, methods=chosen, store_root=str(store),
                       runs_dir=str(runs_dir), data_dir=str(data_dir),
                       overrides=overrides or None, concurrency=concurrency, promote=promote)
    if as_json:
        import polars as pl

        from pipeline.compare_report import aggregate

        typer.echo(json.dumps(aggregate(pl.read_parquet(out["table"])).to_dicts()))
    else:
        typer.echo(out["markdown"])
    for failure in out["failed"]:
        typer.echo(f"failed: {failure}", err=True)
    typer.echo(f"table: {out['table']}")
    typer.echo(f"report: {out['html']}")
    typer.echo(f"plot: {out['plot']}")
    if out["failed"]:
        raise typer.Exit(1)
