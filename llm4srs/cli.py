"""`llm4srs` entry point. Each command maps to one flow or pipeline function.

User errors (bad dataset, column, option, store reference) print one line to stderr and
exit 2; results go to stdout (`--json` prints one JSON list and nothing else there).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from llm4srs import env, stack
from llm4srs.options import (
    ConfigOpt,
    DataDirOpt,
    DatasetOpt,
    ModelOpt,
    ResumeOpt,
    RowsJsonOpt,
    RunsDirOpt,
    SeedsOpt,
    SetOpt,
    StoreOpt,
    csv_list,
    output_folder,
    parse_seeds,
    parse_sets,
    print_rows,
    usage_error,
)
from llm4srs.prefect_server import run_flow

env.configure()

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="LLM embeddings for sequential recommenders.")


def _mount_store() -> None:
    from llm4srs.store_cli import app as store_app

    app.add_typer(store_app, name="store", help="inspect and manage the embeddings store")


_mount_store()


def _mount_compare() -> None:
    from llm4srs.compare_cli import compare

    app.command("compare")(compare)


_mount_compare()


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
    backbone: Annotated[str, typer.Option(help="comma list of backbones (sasrec, gru4rec, bert4rec, pop, or one registered in models/srs/registry.py)")] = "sasrec",
    seeds: SeedsOpt = "0",
    config: ConfigOpt = None,
    set_: SetOpt = [],  # noqa: B006
    embeddings: Annotated[str | None, typer.Option(help="item kind from the store, e.g. items/llmemb-rat (default: ID-only)")] = None,
    embedding_mode: Annotated[str, typer.Option(help="init (PCA to dim, then trained) | frozen_adapter")] = "init",
    method: Annotated[str, typer.Option(help="srs (a backbone, ID-only or on --embeddings) | llmesr (LLM-ESR: dual view on --embeddings, self-distillation over --user-embeddings neighbours; switches as --set llmesr.<field>=…)")] = "srs",
    user_embeddings: Annotated[str | None, typer.Option(help="user kind from the store for LLM-ESR's neighbours, e.g. users/semantic-smollm2")] = None,
    store: StoreOpt = Path("store"),
    resume: ResumeOpt = False,
    force: Annotated[bool, typer.Option(help="train again instead of reusing a cached run (e.g. after deleting its run folder)")] = False,
    nproc: Annotated[int | None, typer.Option(min=1, help="training processes per run (torch.distributed: gloo on CPU, NCCL on GPUs, one GPU each); the global batch stays batch_size (= --set nproc=N)")] = None,
    data_dir: DataDirOpt = Path("data"),
    runs_dir: RunsDirOpt = Path("runs"),
    as_json: RowsJsonOpt = False,
) -> None:
    """Train and evaluate backbones on a dataset (Prefect flow `srs`); print the results."""
    stack.check()  # a known-broken torch/transformers/peft combination: before any work

    from pipeline.requests import TrainRequest

    if embedding_mode not in ("init", "frozen_adapter"):
        raise usage_error(f"--embedding-mode must be init or frozen_adapter, not {embedding_mode!r}")
    overrides = parse_sets(set_)
    if config is not None:
        overrides = {**_yaml_overrides(config), **overrides}
    if nproc is not None:
        overrides["nproc"] = nproc
    request = TrainRequest(
        dataset=dataset, backbones=csv_list(backbone), seeds=parse_seeds(seeds),
        overrides=overrides, method=method, embedding=embeddings,
        embedding_mode=embedding_mode, user_embedding=user_embeddings, store_root=str(store),
        data_dir=str(data_dir), runs_dir=str(runs_dir), resume=resume, refresh=force,
    ).checked()  # every check before Prefect starts; the flow gets the checked request

    from flows.srs import srs_flow

    out = run_flow(srs_flow, request)
    print_rows(out, as_json, "test results")


@app.command()
def embed(
    generators: Annotated[str, typer.Argument(help="'all' or a comma list of generators (semantic, sasrec-id, llmemb-scft, llmemb, tslrec, fused, or one registered in pipeline/methods/registry.py)")] = "all",
    dataset: DatasetOpt = "movielens-100k",
    store: StoreOpt = Path("store"),
    model: ModelOpt = "smollm2",
    set_: Annotated[list[str], typer.Option("--set", help="SASRec override for sasrec-id, e.g. --set epochs=50")] = [],  # noqa: B006
    data_dir: DataDirOpt = Path("data"),
    runs_dir: Annotated[Path, typer.Option(help="checkpoints of the generators", callback=output_folder)] = Path("runs"),
    scft_steps: Annotated[int | None, typer.Option(help="cap on SCFT optimizer steps (CPU default 60)")] = None,
    tslrec_steps: Annotated[int | None, typer.Option(help="cap on TSLRec SFT steps (CPU default 80, of 8 users)")] = None,
    tslrec_mode: Annotated[str | None, typer.Option(help="TSLRec input: auto | text (titles) | ids (item_<id>, limited text)")] = None,
    fused_parts: Annotated[str | None, typer.Option(help="item kinds items/fused concatenates (comma list; default items/llmemb-rat,items/llmemb-scft)")] = None,
    force: Annotated[bool, typer.Option(help="recompute instead of reusing cached generator runs")] = False,
    ids_as_text: Annotated[bool, typer.Option(help="semantic on a dataset without item text: embed 'item <id>' strings")] = False,
    shards: Annotated[int, typer.Option(min=1, help="semantic in this many shards (tasks that each write a Parquet part)")] = 1,
    task_runner: Annotated[str, typer.Option(help="where shards run: threads | dask | ray")] = "threads",
    runner_address: Annotated[str | None, typer.Option(help="a running Dask scheduler / Ray head to use instead of a local cluster")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="workers of the local cluster (threads: pool size)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print {kind: version} as JSON")] = False,
) -> None:
    """Stage 1: write item/user embeddings to the store (Prefect flow `embeddings`).

    llmemb = SCFT (→ items/llmemb-scft) then RAT (→ items/llmemb-rat); it needs sasrec-id,
    which it runs first. tslrec = k-means on sasrec-id → user-level preference SFT →
    items/tslrec; it also runs sasrec-id first.
    """
    stack.check()
    from pipeline.data.config import resolve_dataset
    from pipeline.methods.registry import GENERATORS, get_generator, in_needs_order

    chosen = list(GENERATORS) if generators == "all" else csv_list(generators)
    if not chosen:
        raise usage_error(f"no generator given; choose from all, {', '.join(GENERATORS)}")
    order = in_needs_order(chosen)  # an unknown name is one line
    resolve_dataset(dataset)
    configs: dict[str, dict] = {"sasrec-id": parse_sets(set_),
                                "tslrec": _tslrec_config(tslrec_steps, tslrec_mode)}
    if scft_steps is not None:
        configs["llmemb-scft"] = {"max_steps": scft_steps}
    if fused_parts is not None:
        configs["fused"] = {"parts": csv_list(fused_parts)}
    if ids_as_text:
        from pipeline.methods.semantic.write import DEFAULT_PROMPT

        configs["semantic"] = {"prompt": DEFAULT_PROMPT.model_copy(
            update={"ids_as_text": True}).model_dump(mode="json")}

    from pipeline.data.prepare import prepare_dataset
    from pipeline.llm import LLMSpec, check_source
    from pipeline.preflight import check_text_for
    from pipeline.split import check_negatives

    llm = LLMSpec(source=model)
    # every config valid before any flow starts
    loaded = {name: get_generator(name).load_config(configs.get(name, {}), llm) for name in order}
    if any(get_generator(name).uses_llm for name in order):
        check_source(llm)  # found offline, a GGUF readable and supported: before any flow
    prepared = prepare_dataset(resolve_dataset(dataset), data_dir)
    check_text_for(prepared, order, ids_as_text)
    check_negatives(prepared, [getattr(get_generator(n), "negatives", lambda c: 0)(loaded[n])
                               for n in order])  # those that evaluate: the catalogue allows it
    if "fused" in order:  # its parts: written by this run or already stored
        from pipeline.methods.fused.write import check_parts

        check_parts(prepared, store, loaded["fused"], {k for n in order for k in get_generator(n).kinds})
    from flows.sharding import check_runner

    check_runner(task_runner)  # unknown name or missing extra: one line, before any flow

    from flows.embeddings import embeddings_flow

    refs = run_flow(embeddings_flow, dataset=dataset, generators=chosen, configs=configs,
                           llm=llm.model_dump(mode="json"), refresh=force,
                           data_dir=str(data_dir), store_root=str(store), runs_dir=str(runs_dir),
                           shards=shards, task_runner=task_runner, runner_address=runner_address,
                           workers=workers)
    typer.echo(json.dumps(refs) if as_json else "\n".join(f"{k}: {v}" for k, v in refs.items()))


def _tslrec_config(steps: int | None, mode: str | None) -> dict:
    """TSLRec overrides from the CLI, validated before any flow starts."""
    from pydantic import ValidationError

    from pipeline.methods.tslrec.write import TslrecConfig

    cfg = {k: v for k, v in (("max_steps", steps), ("mode", mode)) if v is not None}
    try:
        TslrecConfig(**cfg)
    except ValidationError as err:
        first = err.errors()[0]
        raise usage_error(f"--tslrec-{first['loc'][0]}: {first['msg']}".replace("max_steps", "steps")) from None
    return cfg


@app.command()
def recommend(
    run: Annotated[str, typer.Argument(help="a run folder, or dataset/run as `train` prints it")],
    history: Annotated[str | None, typer.Option(help="comma list of raw item ids (your dataset's own ids), oldest first")] = None,
    histories: Annotated[Path | None, typer.Option(help="batch: a Parquet/CSV with columns user, history (ids separated by spaces or commas)")] = None,
    out: Annotated[Path | None, typer.Option(help="batch: the Parquet of top-k to write (user, rank, item, title, score)")] = None,
    k: Annotated[int, typer.Option("-k", min=1, help="how many items")] = 10,
    skip_unknown: Annotated[bool, typer.Option(help="leave out ids the dataset does not know instead of refusing")] = False,
    ann: Annotated[str | None, typer.Option(help="rank through the store's FAISS index over the run's exported table (the ref `llm4srs export` printed)")] = None,
    store: StoreOpt = Path("store"),
    runs_dir: RunsDirOpt = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Top-k items for a history of raw item ids from a trained run (no Prefect, no store)."""
    if (history is None) == (histories is None):
        raise usage_error("give exactly one of --history or --histories")
    if histories is not None and out is None:
        raise usage_error("--histories needs --out (the Parquet of top-k to write)")
    from pipeline.recommend import TrainedRun, find_run

    trained = TrainedRun.load(find_run(run, runs_dir))
    if ann is not None and history is None:
        raise usage_error("--ann serves one --history at a time")
    if history is not None:
        if ann is not None:
            from embeddings_store import EmbeddingStore

            index = EmbeddingStore(store).open_index(ann)
            recs = trained.recommend_ann(csv_list(history), index, k, skip_unknown)
        else:
            recs = trained.recommend(csv_list(history), k, skip_unknown)
        if as_json:
            typer.echo(json.dumps(recs))
        else:
            for r in recs:
                typer.echo(f"{r['rank']:>3}  {r['item']:<12} {r['score']:9.4f}  {r['title']}")
        return
    from pipeline.recommend import read_histories, write_top_k

    users, raw = read_histories(histories)
    written = write_top_k(users, trained.recommend_many(raw, k, skip_unknown), out)
    typer.echo(json.dumps({"out": str(written), "users": len(users)}) if as_json
               else f"wrote top-{k} for {len(users)} users: {written}")


@app.command()
def export(
    run: Annotated[str, typer.Argument(help="a run folder, or dataset/run as `train` prints it")],
    store: StoreOpt = Path("store"),
    runs_dir: RunsDirOpt = Path("runs"),
    encoder: Annotated[bool, typer.Option(help="also write the sequence encoder as a torch.export program (encoder.pt2 in the run folder)")] = True,
    onnx: Annotated[bool, typer.Option(help="also write the sequence encoder as ONNX (encoder.onnx in the run folder, checked with onnxruntime)")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Write a trained run's item table to the store (items/run-<run>, with lineage) and its
    encoder as a torch.export program and as ONNX, each checked against PyTorch."""
    from embeddings_store import EmbeddingStore
    from pipeline.recommend import (
        PARITY_TOL,
        TrainedRun,
        export_encoder,
        export_item_table,
        export_onnx,
        find_run,
    )

    trained = TrainedRun.load(find_run(run, runs_dir))
    out: dict = {"items": export_item_table(trained, EmbeddingStore(store))}
    if encoder:
        path, gap = export_encoder(trained, trained.folder / "encoder.pt2")
        if gap > PARITY_TOL:
            raise RuntimeError(f"exported encoder differs from PyTorch by {gap:.2e} (> {PARITY_TOL:.0e})")
        out.update(encoder=str(path), max_abs_difference=gap)
    if onnx:  # export_onnx refuses (writes nothing) above PARITY_TOL itself
        path, gap = export_onnx(trained, trained.folder / "encoder.onnx")
        out.update(onnx=str(path), onnx_max_abs_difference=gap)
    typer.echo(json.dumps(out) if as_json else "\n".join(f"{k}: {v}" for k, v in out.items()))


@app.command()
def e4srec(
    dataset: DatasetOpt = "movielens-100k",
    model: ModelOpt = "smollm2",
    seeds: SeedsOpt = "0",
    config: ConfigOpt = None,
    set_: SetOpt = [],  # noqa: B006
    store: StoreOpt = Path("store"),
    resume: ResumeOpt = False,
    data_dir: DataDirOpt = Path("data"),
    runs_dir: RunsDirOpt = Path("runs"),
    as_json: RowsJsonOpt = False,
) -> None:
    """E4SRec: the LLM over projected items/sasrec-id embeddings scores every item (flow `e4srec`)."""
    stack.check()

    from embeddings_store import EmbeddingStore
    from pipeline.data.config import resolve_dataset
    from pipeline.llm import LLMSpec, check_source
    from pipeline.methods.e4srec import load_e4srec_config
    from pipeline.methods.e4srec.run import resolve_id_table

    seed_list = parse_seeds(seeds)
    overrides = parse_sets(set_)
    load_e4srec_config(overrides, config)  # fail fast, before Prefect starts
    if config is not None:
        overrides = {**_yaml_overrides(config), **overrides}
    spec = LLMSpec(source=model)
    check_source(spec)  # an unknown model or a bad GGUF fails here, not inside the flow
    name = resolve_dataset(dataset).dataset_name
    resolve_id_table(EmbeddingStore(store), name)  # "run `llm4srs embed sasrec-id` first"

    from flows.e4srec import e4srec_flow

    out = run_flow(e4srec_flow, dataset=dataset, llm=spec.model_dump(mode="json"), seeds=seed_list,
                      overrides=overrides, data_dir=str(data_dir), runs_dir=str(runs_dir),
                      store_root=str(store), resume=resume)
    print_rows(out, as_json, "E4SRec test results")


@app.command()
def server(
    port: Annotated[int, typer.Option(min=1, max=65535, help="port on 127.0.0.1")] = 4200,
) -> None:
    """Run a local Prefect server in the foreground (Ctrl-C stops it). With
    PREFECT_API_URL pointing at it, flow commands reuse it instead of starting their own."""
    import os
    import shutil

    prefect = shutil.which("prefect", path=os.path.dirname(sys.executable)) or "prefect"
    typer.echo(f"in other shells: export PREFECT_API_URL=http://127.0.0.1:{port}/api", err=True)
    os.execv(prefect, [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)])


@app.command()
def serve(
    only: Annotated[str | None, typer.Option(help="comma list of deployment names (default: all importable)")] = None,
    no_schedules: Annotated[bool, typer.Option("--no-schedules", help="serve without cron schedules (runs only when triggered)")] = False,
    list_: Annotated[bool, typer.Option("--list", help="print the deployments as JSON and exit")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="at most this many flow runs at once")] = None,
) -> None:
    """Serve the flows' deployments (flows/deployments.py) from this process until SIGTERM.

    Schedules need a Prefect server (`prefect server start`, PREFECT_API_URL); trigger a
    run with `prefect deployment run 'srs/srs-nightly' --param dataset=...`.
    """
    from flows import deployments

    names = csv_list(only) if only else None
    if list_:
        rows = [{"name": r.spec.name, "flow": r.flow.name if r.flow else None,
                 "entrypoint": r.spec.flow_ref, "cron": None if no_schedules else r.spec.cron,
                 "parameters": r.parameters, "skipped": r.skipped, "note": r.note}
                for r in deployments.resolve_all(names)]
        typer.echo(json.dumps(rows))
        return
    deployments.serve(names, schedules=not no_schedules, limit=limit)


def _yaml_overrides(path: Path) -> dict:
    from pipeline.presets import read_mapping

    return read_mapping(path)


class _DropUserErrors(logging.Filter):
    """Drops the run-log records that carry one of `types` (a traceback Prefect logs when a
    task or flow fails): `main` prints that error as one `error:` line instead."""

    def __init__(self, types: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self.types = types

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, self.types):
            return False
        # The "Finished in state Failed(... encountered an exception InputError: …)" line
        # that follows carries no exception, only its type's name in the message.
        message = record.getMessage()
        return not ("Finished in state Failed" in message
                    and any(f"exception {name}:" in message for name in self._names()))

    def _names(self) -> set[str]:
        """The user error types' names, subclasses (e.g. DivergedError) included."""
        names, todo = set(), list(self.types)
        while todo:
            t = todo.pop()
            names.add(t.__name__)
            todo += t.__subclasses__()
        return names


def quiet_run_logs(types: tuple[type[BaseException], ...]) -> None:
    """Silence Prefect's tracebacks for user errors (logger-level filters survive Prefect's
    own logging set-up, which replaces handlers but keeps filters)."""
    for name in ("prefect.task_runs", "prefect.flow_runs"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropUserErrors) for f in logger.filters):
            logger.addFilter(_DropUserErrors(types))


@contextlib.contextmanager
def _exit_on_termination():
    """SIGTERM/SIGHUP (what `timeout`, Docker, Kubernetes and schedulers send) exit like
    Ctrl-C does: Python unwinds, so atexit handlers stop Prefect's temporary server instead
    of leaving it orphaned (holding the caller's stdout/stderr). SIGKILL cannot be caught."""
    import signal

    def terminate(signum, frame):
        raise SystemExit(128 + signum)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {s: signal.signal(s, terminate) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


def _import_plugins() -> None:
    """LLM4SRS_PLUGINS=pkg.mod,other.mod: modules that register backbones, generators or
    sources (ARCHITECTURE.md) before the command runs."""
    import importlib
    import os

    for name in filter(None, (m.strip() for m in os.environ.get("LLM4SRS_PLUGINS", "").split(","))):
        try:
            importlib.import_module(name)
        except ImportError as err:
            from pipeline.errors import InputError

            raise InputError(f"LLM4SRS_PLUGINS: cannot import {name!r} ({err})") from None


def main() -> None:
    """Console entry point: one-line errors, exit 2, for every user-input problem; a bug ends
    with its traceback, then one line naming the failed task and the kept log (exit 1)."""
    from embeddings_store.errors import StoreError
    from llm4srs.failure import CommandLog, summary
    from pipeline.errors import InputError
    from pipeline.llm.errors import ModelLoadError

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    user_errors = (InputError, StoreError, ModelLoadError)
    quiet_run_logs((*user_errors, OSError))  # OSError: the environment (disk full, …), one line
    command = next((a for a in sys.argv[1:] if not a.startswith("-")), "")
    with CommandLog(command) as log, _exit_on_termination():
        try:
            _import_plugins()
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
        except OSError as e:  # disk full, permission denied: the environment, named in one line
            where = f"{e.filename}: " if e.filename else ""
            typer.echo(f"error: {where}{e.strerror or str(e).splitlines()[0] or type(e).__name__}", err=True)
            sys.exit(1)
        except Exception as e:
            # Usage errors of the (vendored) click layer: unknown option, missing value, …
            if hasattr(e, "format_message") and hasattr(e, "exit_code"):
                typer.echo(f"error: {e.format_message()}", err=True)
                sys.exit(e.exit_code)
            import traceback

            traceback.print_exc()
            typer.echo(summary(e, log), err=True)
            sys.exit(1)


if __name__ == "__main__":
    main()
