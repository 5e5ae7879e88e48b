"""``llm4srs compare``: the comparison grid (Prefect flow `compare`) from the shell, on one
dataset or several (`--dataset a,b`: flow `compare-datasets`, one leaderboard).

Everything that can be checked before Prefect starts is, for every dataset before any
trains: its spec and data, backbones, seeds, methods, overrides (against every backbone's
config under the dataset's budget), and the store's item kinds (pipeline.compare
`check_datasets`). User errors raise InputError, which `llm4srs.cli.main` prints as one
`error: …` line (exit 2).
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
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="as for `llm4srs train`; a comma list compares several and writes one leaderboard")] = "movielens-100k",
    backbones: Annotated[str | None, typer.Option(help="comma list of sasrec,gru4rec,bert4rec (default: configs/compare.yaml's, per dataset)")] = None,
    seeds: Annotated[str, typer.Option(help="comma list of training seeds")] = "0,1,2",
    kinds: Annotated[str | None, typer.Option(help="comma list of item kinds, or 'all' (default: the preset's, items/semantic-* and items/llmemb-rat)")] = None,
    methods: Annotated[str | None, typer.Option(help="comma list of id, llm-init, llmesr, llmesr-nodistill, llmesr-nocross (default: all)")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="override on top of configs/compare.yaml, e.g. --set epochs=50")] = [],  # noqa: B006
    concurrency: Annotated[int | None, typer.Option(min=1, help="cells trained at once (default: the preset's, 2)")] = None,
    store: StoreOpt = Path("store"),
    data_dir: DataDirOpt = Path("data"),
    runs_dir: RunsDirOpt = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help="print the aggregated rows (each with its `dataset`) as one JSON list")] = False,
    promote: Annotated[bool, typer.Option(help="give @production to the item version that wins on validation (only if it beats the holder)")] = True,
    optional: Annotated[str, typer.Option(help="comma list of --dataset entries to skip, with one line saying what to build, when their data or item embeddings are missing")] = "",
) -> None:
    """Compare ID-only, LLM-initialised and LLM-ESR backbones over the store's item
    embeddings (Prefect flow `compare`); print the table, then `plot: <png>` last. With
    several datasets: the leaderboard, `plot: <png>` per dataset, then `leaderboard: <md>`."""
    from llm4srs import stack

    stack.check()
    from pipeline.compare import (
        DEFAULT_ABLATIONS,
        check_backbones,
        check_datasets,
        load_preset,
        methods_for,
    )

    chosen_backbones = check_backbones(csv_list(backbones)) if backbones is not None else None
    seed_list = parse_seeds(seeds)
    overrides = parse_sets(set_)
    preset = load_preset()
    specs = csv_list(dataset)
    if not specs:
        raise usage_error("--dataset: at least one dataset")

    from flows.compare import supports_llmesr

    chosen = methods_for(csv_list(methods) if methods else None, DEFAULT_ABLATIONS, supports_llmesr())
    wanted = None if kinds in (None, "") else "all" if kinds.strip() == "all" else csv_list(kinds)
    checked, skipped = check_datasets(
        specs, backbones=chosen_backbones, kinds=wanted, methods=chosen, overrides=overrides,
        preset=preset, store_root=store, data_dir=data_dir, optional=set(csv_list(optional)))
    for line in skipped:
        typer.echo(line, err=True)

    from flows.compare import compare_datasets_flow, compare_flow

    common = dict(seeds=seed_list, methods=chosen, store_root=str(store), runs_dir=str(runs_dir),
                  data_dir=str(data_dir), overrides=overrides or None, concurrency=concurrency,
                  promote=promote)
    own = [dict(dataset=c.spec, backbones=c.backbones, kinds=c.kinds) for c in checked]
    if len(specs) == 1:  # one dataset: as before, no leaderboard
        runs, board = [run_flow(compare_flow, **common, **own[0])], None
    else:
        board = run_flow(compare_datasets_flow, datasets=own, common=common, notes=skipped)
        runs = board["runs"]
    if as_json:
        import polars as pl

        from pipeline.compare_report import aggregate

        typer.echo(json.dumps([{"dataset": r["dataset"], **row} for r in runs
                               for row in aggregate(pl.read_parquet(r["table"])).to_dicts()]))
    else:
        typer.echo(board["markdown"] if board else runs[0]["markdown"])
    for r in runs:
        for failure in r["failed"]:
            typer.echo(f"failed: {r['dataset']}: {failure}" if board else f"failed: {failure}",
                       err=True)
        typer.echo(f"table: {r['table']}")
        typer.echo(f"report: {r['html']}")
        typer.echo(f"plot: {r['plot']}")
    if board:
        typer.echo(f"leaderboard: {board['leaderboard']}")
    if any(r["failed"] for r in runs):
        raise typer.Exit(1)
