"""``llm4srs store ...``: inspect and manage the embeddings store from the shell.

Thin by design: each command maps onto one :class:`EmbeddingStore` method. A
``StoreError`` (bad reference, damaged version, ...) becomes one line on stderr and exit
code 2; ``verify`` exits 1 when a version fails its checks.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from embeddings_store import EmbeddingStore, StoreError
from llm4srs.options import output_folder

app = typer.Typer(
    help="Inspect and manage the embeddings store (versions, tags, search).",
    no_args_is_help=True,
    add_completion=False,
)

RootOpt = Annotated[
    Path,
    typer.Option(
        "--root", envvar="LLM4SRS_STORE", help="Store root (env LLM4SRS_STORE).", show_default=True
    ),
]
DatasetOpt = Annotated[
    str | None, typer.Option("--dataset", help="Dataset, when the reference leaves it out.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
RefArg = Annotated[
    str,
    typer.Argument(
        help="[dataset/]entity/name[@version|@tag|@current|@latest]", show_default=False
    ),
]
KindArg = Annotated[str, typer.Argument(help="[dataset/]entity/name", show_default=False)]
DEFAULT_ROOT = Path("store")


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    try:
        yield
    except StoreError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=True))


@app.command("ls")
def ls(
    kind: Annotated[str | None, typer.Argument(help="Only this kind, e.g. items/tslrec.")] = None,
    root: RootOpt = DEFAULT_ROOT,
    dataset: DatasetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List versions (one row each, CURRENT marked with '*')."""
    with _user_errors():
        rows = EmbeddingStore(root).list(dataset=dataset, kind=kind)
    if as_json:
        _print_json([r.as_dict() for r in rows])
        return
    if not rows:
        typer.echo(f"no versions under {root}")
        return
    for r in rows:
        mark = "*" if r.current else " "
        tags = f" [{', '.join(r.tags)}]" if r.tags else ""
        shape = f"{r.count}x{r.dim}" if r.error is None else f"unreadable: {r.error}"
        typer.echo(f"{mark} {r.dataset}/{r.kind}@{r.version}  {shape}  {r.created_at}{tags}")


@app.command("show")
def show(
    ref: RefArg, root: RootOpt = DEFAULT_ROOT, dataset: DatasetOpt = None, as_json: JsonOpt = False
) -> None:
    """Print a version's manifest."""
    with _user_errors():
        store = EmbeddingStore(root)
        m = store.manifest(store.resolve(ref, dataset))
    data = m.model_dump(mode="json")
    if as_json:
        _print_json(data)
        return
    data["mean"] = None if m.mean is None else f"<{len(m.mean)} values>"
    for key, value in data.items():
        typer.echo(f"{key}: {json.dumps(value, sort_keys=True)}")


@app.command("search")
def search(
    ref: RefArg,
    item_id: Annotated[
        int | None, typer.Option("--id", help="Query with this stored vector's id.")
    ] = None,
    vector_file: Annotated[
        Path | None, typer.Option("--vector-file", help=".npy file holding [D] or [Q, D] queries.")
    ] = None,
    k: Annotated[int, typer.Option("-k", "--k", help="Neighbours per query.")] = 10,
    include_self: Annotated[
        bool, typer.Option(help="Keep the --id item itself in its results.")
    ] = False,
    nprobe: Annotated[int | None, typer.Option(help="IVF lists to visit (override).")] = None,
    root: RootOpt = DEFAULT_ROOT,
    dataset: DatasetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Nearest neighbours (ids and scores) by a stored id or by vectors from a file."""
    with _user_errors():
        if (item_id is None) == (vector_file is None):
            raise StoreError("give exactly one of --id or --vector-file")
        store = EmbeddingStore(root)
        r = store.resolve(ref, dataset)
        if item_id is not None:
            queries = _vector_of(store, r, item_id)[None, :]  # [1, D]
        else:
            queries = _load_queries(vector_file)  # type: ignore[arg-type]
            dim = store.manifest(r).dim
            if queries.shape[1] != dim:
                raise StoreError(f"{vector_file}: queries have shape {queries.shape}, {r} is {dim}-d")
        index = store.open_index(r)
        extra = 1 if item_id is not None and not include_self else 0
        params = {"nprobe": nprobe} if nprobe else {}
        ids, scores = index.search(queries, k + extra, **params)  # [Q, k(+1)]
    results = []
    for qi in range(len(ids)):
        pairs = [(int(i), float(s)) for i, s in zip(ids[qi], scores[qi], strict=True) if i != -1]
        if extra:
            pairs = [p for p in pairs if p[0] != item_id]
        results.append([{"id": i, "score": s} for i, s in pairs[:k]])
    if as_json:
        _print_json({"ref": str(r), "results": results})
        return
    for qi, res in enumerate(results):
        typer.echo(f"query {item_id if item_id is not None else qi} in {r}:")
        for rank, hit in enumerate(res, 1):
            typer.echo(f"  {rank:3d}  id={hit['id']}  score={hit['score']:.4f}")


def _vector_of(store: EmbeddingStore, ref: Any, item_id: int) -> np.ndarray:
    """The stored vector [D] of ``item_id``, streamed so a big version is never loaded whole."""
    for ids, vectors in store.iter_chunks(ref):
        hit = np.flatnonzero(ids == item_id)
        if len(hit):
            return np.array(vectors[hit[0]], dtype=np.float32)
    raise StoreError(f"{ref}: no vector with id {item_id}")


def _load_queries(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise StoreError(f"{path}: cannot read .npy queries ({e})") from e
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.floating):
        raise StoreError(
            f"{path}: expected a float array of shape [D] or [Q, D], got {arr.dtype} {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise StoreError(f"{path}: queries contain NaN/Inf")
    return arr.astype(np.float32, copy=False)


@app.command("rollback")
def rollback(
    kind: KindArg,
    to: Annotated[
        str | None, typer.Option(help="Version id, tag or 'latest' (default: the previous one).")
    ] = None,
    root: RootOpt = DEFAULT_ROOT,
    dataset: DatasetOpt = None,
) -> None:
    """Point CURRENT at an older (or any given) version."""
    with _user_errors():
        store = EmbeddingStore(root)
        kd = store.kind(kind, dataset)
        ref = store.rollback(kd.dataset, kd.kind, to)
    typer.echo(f"CURRENT of {kd.dataset}/{kd.kind} is now {ref.version}")


@app.command("gc")
def gc(
    kind: Annotated[
        str | None, typer.Argument(help="[dataset/]entity/name; default: every kind.")
    ] = None,
    keep: Annotated[
        int, typer.Option(help="Newest versions to keep (plus CURRENT and tagged).")
    ] = 3,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only report what would go.")] = False,
    root: RootOpt = DEFAULT_ROOT,
    dataset: DatasetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete old versions and dead writers' leftovers."""
    from embeddings_store.manage import gc as gc_kind
    from embeddings_store.manage import list_kinds

    with _user_errors():
        store = EmbeddingStore(root)
        kinds = [store.kind(kind, dataset)] if kind else list_kinds(store.root, dataset)
        reports = {f"{kd.dataset}/{kd.kind}": gc_kind(kd, keep, dry_run) for kd in kinds}
    if as_json:
        _print_json({name: vars(r) for name, r in reports.items()})
        return
    verb = "would remove" if dry_run else "removed"
    for name, r in reports.items():
        typer.echo(
            f"{name}: {verb} {len(r.removed)} version(s), kept {len(r.kept)}, cleaned {len(r.cleaned)}"
        )
        for v in r.removed:
            typer.echo(f"  - {v}")


@app.command("verify")
def verify(
    ref: RefArg, root: RootOpt = DEFAULT_ROOT, dataset: DatasetOpt = None, as_json: JsonOpt = False
) -> None:
    """Recompute checksums and re-check counts, ids and index; exit 1 on any problem."""
    with _user_errors():
        store = EmbeddingStore(root)
        report = store.verify(store.resolve(ref, dataset))
    if as_json:
        _print_json(vars(report))
    else:
        typer.echo(f"{report.ref}: {'ok' if report.ok else 'FAILED'}")
        for p in report.problems:
            typer.echo(f"  - {p}")
    if not report.ok:
        raise typer.Exit(1)


@app.command("tag")
def tag(
    ref: RefArg,
    name: Annotated[str, typer.Argument(help="Tag name, e.g. paper.", show_default=False)],
    force: Annotated[bool, typer.Option(help="Move the tag if it names another version.")] = False,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the tag instead.")] = False,
    root: RootOpt = DEFAULT_ROOT,
    dataset: DatasetOpt = None,
) -> None:
    """Tag a version (tagged versions survive gc and can be referenced as @name)."""
    with _user_errors():
        store = EmbeddingStore(root)
        if delete:
            kd = store.kind(ref.partition("@")[0], dataset)
            store.untag(kd.dataset, kd.kind, name)
            typer.echo(f"removed tag {name} from {kd.dataset}/{kd.kind}")
            return
        r = store.tag(store.resolve(ref, dataset), name, force=force)
    typer.echo(f"tagged {r} as {name}")


@app.command("import")
def import_vectors(
    kind: KindArg,
    file: Annotated[Path, typer.Argument(help="Parquet with an id and a vector column.", show_default=False)],
    dataset: Annotated[str, typer.Option("--dataset", help="The dataset spec the vectors are for (as in `llm4srs prepare`).")] = "movielens-100k",
    ids: Annotated[str, typer.Option(help="raw: the source's item ids | internal: prepared ids 1..N.")] = "raw",
    id_column: Annotated[str, typer.Option(help="Column of item ids.")] = "id",
    vector_column: Annotated[str, typer.Option(help="Column of vectors (list of floats).")] = "vector",
    data_dir: Annotated[Path, typer.Option(help="Where raw and prepared datasets live.", callback=output_folder)] = Path("data"),
    root: RootOpt = DEFAULT_ROOT,
) -> None:
    """Write item vectors made elsewhere as a new version (validated against the dataset)."""
    from pipeline.data.config import resolve_dataset
    from pipeline.data.prepare import prepare_dataset
    from pipeline.errors import InputError
    from pipeline.store_import import import_item_vectors

    if ids not in ("raw", "internal"):
        raise InputError(f"--ids must be raw or internal, not {ids!r}")
    ds = prepare_dataset(resolve_dataset(dataset), data_dir)
    with _user_errors():
        ref = import_item_vectors(ds, EmbeddingStore(root), kind, file, ids,  # type: ignore[arg-type]
                                  id_column, vector_column)
    typer.echo(f"wrote {ref}")


@app.command()
def promote(
    ref: Annotated[str | None, typer.Argument(help="The candidate version (dataset/items/name[@…]); leave out with --rollback/--show.", show_default=False)] = None,
    value: Annotated[float | None, typer.Option(help="Its validation figure (higher is better).")] = None,
    metric: Annotated[str, typer.Option(help="What --value measures; the holder must have been promoted on the same.")] = "valid full ndcg@10",
    evidence: Annotated[str | None, typer.Option(help="JSON object kept with the record (runs, seeds, …).")] = None,
    tag: Annotated[str, typer.Option(help="The tag promoted.")] = "production",
    force: Annotated[bool, typer.Option(help="Promote even if it does not beat the holder.")] = False,
    rollback: Annotated[str | None, typer.Option(help="DATASET: give the tag back to its previous holder.")] = None,
    show: Annotated[str | None, typer.Option(help="DATASET: print the promotion history.")] = None,
    root: RootOpt = DEFAULT_ROOT,
    dataset: DatasetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Give @production (or --tag) to a version only if it wins on validation; keep the evidence."""
    from embeddings_store import promotion

    with _user_errors():
        store = EmbeddingStore(root)
        if show is not None:
            _print_json(promotion.history(store, show, tag))
            return
        if rollback is not None:
            decision = promotion.rollback(store, rollback, tag)
        else:
            if ref is None or value is None:
                raise StoreError("promote needs REF and --value (or --rollback/--show DATASET)")
            try:
                extra = json.loads(evidence) if evidence else {}
            except ValueError:
                raise StoreError(f"--evidence is not a JSON object: {evidence[:60]!r}") from None
            if not isinstance(extra, dict):
                raise StoreError("--evidence must be a JSON object")
            full = str(store.resolve(ref, dataset))
            decision = promotion.promote(store, full, metric, value, extra, tag, force)
    if as_json:
        typer.echo(json.dumps({"moved": decision.moved, "holder": decision.holder,
                               "reason": decision.reason}))
    else:
        typer.echo(("promoted: " if decision.moved else "kept: ") + decision.reason)
