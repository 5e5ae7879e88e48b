"""`llm4srs` entry point. Each command maps to one flow or pipeline function.

User errors (bad dataset, column, option, store reference) print one line to stderr and
exit 2; results go to stdout (`--json` prints one JSON list and nothing else there).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from llm4srs import env

env.configure()

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="LLM embeddings for sequential recommenders.")
BACKBONE_NAMES = ("sasrec", "gru4rec", "bert4rec", "pop")

DatasetOpt = Annotated[str, typer.Option(
    "--dataset", "-d", help="movielens-100k | source:PATH (lcrec, amazon, yelp, movielens-1m, "
    "table) | a preset in configs/datasets | a YAML file")]
DataDirOpt = Annotated[Path, typer.Option(help="where raw and prepared datasets live")]


def _mount_store() -> None:
    from llm4srs.store_cli import app as store_app

    app.add_typer(store_app, name="store", help="inspect and manage the embeddings store")


_mount_store()


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _parse_sets(sets: list[str]) -> dict:
    out: dict = {}
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise _usage(f"--set expects key=value, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def _usage(msg: str) -> Exception:
    from pipeline.errors import InputError

    return InputError(msg)


@app.command()
def prepare(dataset: DatasetOpt = "movielens-100k", data_dir: DataDirOpt = Path("data"),
            force: Annotated[bool, typer.Option(help="re-prepare even if cached")] = False,
            as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Load, filter (k-core, rating threshold) and remap a dataset; print its counts."""
    from pipeline.data.config import resolve_dataset
    from pipeline.data.prepare import prepare_dataset

    ds = prepare_dataset(resolve_dataset(dataset), data_dir, force=force)
    info = {"name": ds.name, "path": str(ds.path), "fingerprint": ds.fingerprint,
            **ds.meta["counts"], "dropped": ds.meta["dropped"], "text": ds.text_columns}
    typer.echo(json.dumps(info) if as_json else "\n".join(f"{k}: {v}" for k, v in info.items()))


@app.command()
def train(
    dataset: DatasetOpt = "movielens-100k",
    backbone: Annotated[str, typer.Option(help="comma list of sasrec,gru4rec,bert4rec,pop")] = "sasrec",
    seeds: Annotated[str, typer.Option(help="comma list of training seeds")] = "0",
    config: Annotated[Path | None, typer.Option(help="YAML preset replacing configs/srs/<backbone>.yaml")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="override, e.g. --set lr=0.002 --set model.dropout=0.3")] = [],  # noqa: B006
    embeddings: Annotated[str | None, typer.Option(help="item kind from the store, e.g. items/llmemb-rat (default: ID-only)")] = None,
    embedding_mode: Annotated[str, typer.Option(help="init (PCA to dim, then trained) | frozen_adapter")] = "init",
    store: Annotated[Path, typer.Option(envvar="LLM4SRS_STORE", help="embeddings store root")] = Path("store"),
    resume: Annotated[bool, typer.Option(help="continue interrupted runs from their last checkpoint")] = False,
    data_dir: DataDirOpt = Path("data"),
    runs_dir: Annotated[Path, typer.Option(help="checkpoints and result tables")] = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help="print result rows as one JSON list")] = False,
) -> None:
    """Train and evaluate backbones on a dataset (Prefect flow `srs`); print the results."""
    import polars as pl

    from pipeline.config import load_train_config
    from pipeline.data.config import resolve_dataset
    from pipeline.results import markdown

    backbones = _csv(backbone)
    unknown = [b for b in backbones if b not in BACKBONE_NAMES]
    if unknown or not backbones:
        raise _usage(f"unknown backbone {', '.join(unknown) or '(none)'}; choose from {', '.join(BACKBONE_NAMES)}")
    try:
        seed_list = [int(s) for s in _csv(seeds)]
    except ValueError:
        raise _usage(f"--seeds must be integers, got {seeds!r}") from None
    overrides = _parse_sets(set_)
    if embedding_mode not in ("init", "frozen_adapter"):
        raise _usage(f"--embedding-mode must be init or frozen_adapter, not {embedding_mode!r}")
    resolve_dataset(dataset)  # fail fast on a bad spec, before Prefect starts
    if embeddings is not None:
        from embeddings_store import EmbeddingStore

        EmbeddingStore(store).resolve(embeddings, dataset=resolve_dataset(dataset).dataset_name)
    for b in backbones:  # and on a bad config
        load_train_config(b, overrides, config)
    if config is not None:
        overrides = {**_yaml_overrides(config), **overrides}

    from flows.srs import srs_flow

    out = srs_flow(dataset=dataset, backbones=backbones, seeds=seed_list, overrides=overrides,
                   data_dir=str(data_dir), runs_dir=str(runs_dir), resume=resume,
                   embedding=embeddings, embedding_mode=embedding_mode, store_root=str(store))
    rows = pl.read_parquet(out).to_dicts()
    if as_json:
        typer.echo(json.dumps(rows))
    else:
        typer.echo(markdown(rows, f"{rows[0]['dataset']}: test results"))
        typer.echo(f"\nrows: {out}")


GENERATORS = ("semantic", "sasrec-id", "llmemb")


@app.command()
def embed(
    generators: Annotated[str, typer.Argument(help=f"'all' or a comma list of {', '.join(GENERATORS)}")] = "all",
    dataset: DatasetOpt = "movielens-100k",
    store: Annotated[Path, typer.Option(envvar="LLM4SRS_STORE", help="embeddings store root")] = Path("store"),
    model: Annotated[str, typer.Option(help="LLM: smollm2 | minilm | HF id | folder | .gguf file")] = "smollm2",
    set_: Annotated[list[str], typer.Option("--set", help="SASRec override for sasrec-id, e.g. --set epochs=50")] = [],  # noqa: B006
    data_dir: DataDirOpt = Path("data"),
    runs_dir: Annotated[Path, typer.Option(help="checkpoints of the generators")] = Path("runs"),
    scft_steps: Annotated[int | None, typer.Option(help="cap on SCFT optimizer steps (CPU default 60)")] = None,
    force: Annotated[bool, typer.Option(help="recompute instead of reusing cached generator runs")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print {kind: version} as JSON")] = False,
) -> None:
    """Stage 1: write item/user embeddings to the store (Prefect flow `embeddings`).

    llmemb = SCFT (→ items/llmemb-scft) then RAT (→ items/llmemb-rat); it needs sasrec-id,
    which it runs first.
    """
    from pipeline.config import load_train_config
    from pipeline.data.config import resolve_dataset

    chosen = list(GENERATORS) if generators == "all" else _csv(generators)
    unknown = [g for g in chosen if g not in GENERATORS]
    if unknown or not chosen:
        raise _usage(f"unknown generator {', '.join(unknown) or '(none)'}; choose from all, {', '.join(GENERATORS)}")
    overrides = _parse_sets(set_)
    resolve_dataset(dataset)
    load_train_config("sasrec", overrides)

    from flows.embeddings import embeddings_flow
    from models.llm import LLMSpec

    spec = LLMSpec(source=model).model_dump(mode="json")
    scft_cfg = {} if scft_steps is None else {"max_steps": scft_steps}
    refs = embeddings_flow(dataset=dataset, generators=chosen, sasrec_overrides=overrides,
                           semantic_config={"model": spec}, llm=spec, scft_config=scft_cfg,
                           refresh=force,
                           data_dir=str(data_dir), store_root=str(store), runs_dir=str(runs_dir))
    typer.echo(json.dumps(refs) if as_json else "\n".join(f"{k}: {v}" for k, v in refs.items()))


def _yaml_overrides(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text()) or {}


def main() -> None:
    """Console entry point: one-line errors, exit 2, for every user-input problem."""
    from embeddings_store.errors import StoreError
    from models.llm.errors import ModelLoadError
    from pipeline.errors import InputError

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    user_errors = (InputError, StoreError, ModelLoadError)
    try:
        # Without standalone mode, typer returns (not raises) the code of a typer.Exit.
        rc = app(standalone_mode=False)
        sys.exit(rc if isinstance(rc, int) else 0)
    except user_errors as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as e:
        # Usage errors of the (vendored) click layer: unknown option, missing value, …
        if hasattr(e, "format_message") and hasattr(e, "exit_code"):
            typer.echo(f"error: {e.format_message()}", err=True)
            sys.exit(e.exit_code)
        raise


if __name__ == "__main__":
    main()
