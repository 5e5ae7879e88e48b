"""Comparison flow: every (item embedding × method × backbone × seed) cell through the
cached SRS train task, then one results table, a markdown artifact and a bar plot.

Methods: `id` (ID-only), `llm-init` (item table initialised from the embedding's PCA),
`llmesr` (LLM-ESR: dual view + self-distillation over neighbours from a users/* kind) and
its ablations. Cells run longest first, `concurrency` at a time on a process pool (one
after the other in the flow's process when 1); each is an ordinary `flows.srs.train` run
keyed on its content, so a cell done before (by this flow or `llm4srs train`) costs nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.futures import as_completed
from prefect.task_runners import ProcessPoolTaskRunner

from embeddings_store import EmbeddingStore, promotion
from flows.common import prepare
from flows.srs import train
from pipeline.compare import (
    DEFAULT_ABLATIONS,
    Cell,
    grid_embeddings,
    load_preset,
    methods_for,
    plan_cells,
    validation_winner,
)
from pipeline.compare_report import (
    aggregate,
    find_e4srec_rows,
    leaderboard,
    markdown,
    write_leaderboard,
)
from pipeline.config import load_train_config
from pipeline.data.dataset import Dataset, read_meta
from pipeline.html_report import write_html
from pipeline.plots import compare_plot
from pipeline.requests import TrainRequest, resolve_llmesr
from pipeline.results import PROTOCOL_NOTE, summarize, write_table
from pipeline.runs import results_path, run_folder_gone


def supports_llmesr() -> bool:
    """Whether LLM-ESR is a registered stage-2 method in this build."""
    from pipeline.methods.registry import METHODS

    return "llmesr" in METHODS


def _train(cell: Cell, dataset_path: str, dataset_name: str, runs_dir: str, store_root: str,
           submit: bool):
    """The cell's train task: called here (returns rows) or submitted (returns a future)."""
    request = TrainRequest(dataset=dataset_path, backbones=[cell.backbone], seeds=[cell.seed],
                           overrides=cell.overrides, method=cell.train_method,
                           embedding=cell.embedding, user_embedding=cell.user_embedding,
                           store_root=store_root, runs_dir=runs_dir)
    cfg = load_train_config(cell.backbone, cell.overrides, method=cell.train_method)
    if cell.train_method == "llmesr":  # id_from pinned, rasd settled, as `train` does
        cfg = resolve_llmesr(cfg, store_root, dataset_name)
    users = cell.user_embedding if cell.train_method != "srs" else None
    stale = run_folder_gone(dataset_name, cfg, cell.seed, request, cell.embedding, users)
    task = train.with_options(refresh_cache=stale)
    call = task.submit if submit else task
    return call(dataset_path, cfg, cell.seed, request, cell.embedding, users)


def run_cells(cells: list[Cell], dataset_path: str, runs_dir: str, store_root: str,
              concurrency: int) -> tuple[list[dict], list[str]]:
    """Train every cell, longest first; returns (rows in cell order, each labelled with its
    cell's method; failures as "cell: error" lines). A failed cell does not stop the others
    (it is not cached, so a re-run retries it). concurrency 1: one after the other in this
    process; more: that many at once on the flow's process pool."""
    log = get_run_logger()
    name = read_meta(Path(dataset_path))["name"]
    order = sorted(range(len(cells)), key=lambda i: -cells[i].cost)
    results: dict[int, list[dict]] = {}
    failed: list[str] = []

    def finish(i: int, start: float, get_rows: Callable[[], list[dict]]) -> None:
        try:
            rows = get_rows()
        except Exception as e:  # reported in the table's notes; the other cells go on
            failed.append(f"{cells[i].name}: {type(e).__name__}: {e}")
            log.error("cell %s failed: %s", cells[i].name, e)
            return
        results[i] = cells[i].label(rows)
        log.info("cell %d/%d done (%s, %.0f s)", len(results) + len(failed), len(cells),
                 cells[i].name, time.perf_counter() - start)

    if concurrency == 1:
        for i in order:
            finish(i, time.perf_counter(),
                   partial(_train, cells[i], dataset_path, name, runs_dir, store_root, False))
    inflight: dict[Any, tuple[int, float]] = {}
    while concurrency > 1 and (order or inflight):
        while order and len(inflight) < concurrency:
            i = order.pop(0)
            inflight[_train(cells[i], dataset_path, name, runs_dir, store_root, True)] = (
                i, time.perf_counter())
        future = next(as_completed(list(inflight)))
        finish(*inflight.pop(future), future.result)
    return [r for i in sorted(results) for r in results[i]], failed


# Processes, not threads: each training seeds torch's *global* generator (weight init,
# dropout), which two cells in one process would share and interleave; in their own
# processes a cell gives the same numbers as the same run of `llm4srs train`.
@flow(name="compare", task_runner=ProcessPoolTaskRunner(max_workers=max(os.cpu_count() or 2, 2)))
def compare_flow(dataset: str = "movielens-100k",
                 backbones: list[str] | None = None,
                 seeds: list[int] = [0, 1, 2],  # noqa: B006
                 kinds: list[str] | None = None, methods: list[str] | None = None,
                 ablations: dict[str, dict] | None = None, store_root: str = "store",
                 runs_dir: str = "runs", data_dir: str = "data",
                 overrides: dict | None = None, concurrency: int | None = None,
                 promote: bool = True) -> dict:
    """Run the comparison grid; returns {"dataset", "table", "plot", "html", "markdown",
    "cells", "failed"}.

    backbones: None = the budget preset's for this dataset; kinds: item kinds (None =
    every items/* kind in the store but sasrec-id and e4srec-head); methods: None = id,
    llm-init, llmesr and the ablations (LLM-ESR's only when the train task supports it);
    ablations: name -> overrides of the llmesr cell (None = llmesr-nodistill,
    llmesr-nocross); overrides: on top of the budget preset configs/compare.yaml (with its
    `datasets:` entry for this dataset applied); concurrency: cells at once (None = the
    preset's); promote: give @production to the item version that won on validation
    (embeddings_store.promotion: only if it beats the holder).
    """
    log = get_run_logger()
    path = prepare(dataset, data_dir)
    ds = Dataset.load(Path(path))
    preset = load_preset().for_dataset(ds.name)
    backbones = backbones or preset.backbones
    abl = DEFAULT_ABLATIONS if ablations is None else ablations
    chosen = methods_for(methods, abl, supports_llmesr())
    items, users = grid_embeddings(ds, store_root, kinds) if any(
        m != "id" for m in chosen) else ([], {})
    cells, notes = plan_cells(backbones, seeds, items, users, chosen, abl, preset, overrides)
    log.info("compare on %s: %d cells, %d at a time", ds.name, len(cells),
             concurrency or preset.concurrency)
    start = time.perf_counter()
    rows, failed = run_cells(cells, path, runs_dir, store_root, concurrency or preset.concurrency)
    if not rows:
        raise RuntimeError("every comparison cell failed: " + "; ".join(failed[:3]))
    e4srec, source = find_e4srec_rows(Path(runs_dir), ds.name, ds.fingerprint)
    if e4srec:
        rows += e4srec
        notes.append(f"E4SRec rows from {source}")
    notes += [f"failed: {f}" for f in failed]
    winner = validation_winner(rows, runs_dir) if promote else None
    if winner is not None:
        ref, value, evidence = winner
        decision = promotion.promote(EmbeddingStore(store_root), ref, "valid full ndcg@10",
                                     value, evidence)
        notes.append(("promoted: " if decision.moved else "@production kept: ")
                     + decision.reason)
    entry = f" (datasets.{ds.name})" if ds.name in preset.datasets else ""
    notes.append(f"{len(cells)} cells ({len(cells) - len(failed)} ok) in "
                 f"{(time.perf_counter() - start) / 60:.1f} min; budget preset "
                 f"configs/compare.yaml{entry}, overrides {overrides or {}}")
    table = write_table(rows, results_path(runs_dir, ds.name, "compare"))
    agg = aggregate(rows)
    plot = compare_plot(agg, table.with_suffix(".png"), title=f"{ds.name}: test full NDCG@10")
    md = markdown(agg, f"Comparison on {ds.name}", notes=notes)
    page = write_html(table.with_suffix(".html"), f"Comparison on {ds.name}", summarize(rows),
                      [PROTOCOL_NOTE, *notes], plot, {"budget preset": preset.model_dump(mode="json"),
                                                      "overrides": overrides or {}},
                      {"dataset": f"{ds.name} ({ds.fingerprint})", **{
                          f"item kind {i + 1}": ref for i, ref in enumerate(items)}})
    create_markdown_artifact(f"{md}\n\nTable: `{table}`; plot: `{plot}`", key="compare-results",
                             description=f"methods on {ds.name}")
    return {"dataset": ds.name, "table": str(table), "plot": str(plot), "html": str(page),
            "markdown": md, "cells": len(cells), "failed": failed}


@flow(name="compare-datasets")
def compare_datasets_flow(datasets: list[dict[str, Any]], common: dict[str, Any],
                          notes: list[str] | None = None) -> dict:
    """`compare_flow` once per dataset, one after the other, then one leaderboard
    (runs/leaderboard-<UTC time>.md, pipeline.compare_report.leaderboard). `datasets`: each
    run's own arguments (dataset, backbones, kinds); `common`: those of every run (seeds,
    methods, store_root, runs_dir, …); notes: lines under the leaderboard (skipped
    datasets). Returns {"runs": [compare_flow's result, …], "leaderboard", "markdown"}."""
    import polars as pl

    runs = [compare_flow(**common, **own) for own in datasets]
    runs_dir = common.get("runs_dir", "runs")
    md = leaderboard([(r["dataset"], pl.read_parquet(r["table"]).to_dicts(), r["markdown"])
                      for r in runs], runs_dir, notes)
    path = write_leaderboard(runs_dir, md)
    create_markdown_artifact(md, key="compare-leaderboard",
                             description=", ".join(r["dataset"] for r in runs))
    return {"runs": runs, "leaderboard": str(path), "markdown": md}
