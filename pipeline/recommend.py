"""Recommendations from a trained stage-2 run, for histories given as *raw* item ids.

A run folder (`runs/<dataset>/<run>/`) holds `config.json`, `best.pt` and `run.json` (the
card `pipeline.runs.train_one` writes: dataset folder and fingerprint, method, stored
inputs). `TrainedRun.load` rebuilds the model from them alone — no store, no Prefect — and
`recommend` ranks the whole catalogue for a history of the user's own item ids, the history
itself excluded, so a user the model never saw is served like any other. The export
functions at the bottom write the run's item table to the store and its sequence encoder
as files other programs run (`encoder.pt2`, `encoder.onnx`), each checked against PyTorch.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import types
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch

from pipeline.config import TrainConfig
from pipeline.data.dataset import Dataset
from pipeline.errors import InputError

RUN_CARD = "run.json"


def find_run(spec: str, runs_dir: Path) -> Path:
    """A run folder from its path, or from `dataset/run` (as `train` prints it) under
    `runs_dir`."""
    for folder in (Path(spec), runs_dir / spec):
        if (folder / "config.json").is_file():
            return folder
    raise InputError(f"run {spec!r}: no run folder there or under {runs_dir} "
                     "(give a folder holding config.json and best.pt, or dataset/run)")


@dataclass
class TrainedRun:
    folder: Path
    config: TrainConfig
    dataset: Dataset
    model: torch.nn.Module  # a SequentialRecommender in eval mode, on the CPU
    card: dict

    @classmethod
    def load(cls, folder: Path) -> TrainedRun:
        from pipeline.data.dataset import read_meta
        from pipeline.train import build_model

        folder = Path(folder)
        card_path, best = folder / RUN_CARD, folder / "best.pt"
        if not card_path.is_file():
            raise InputError(f"run {folder} has no {RUN_CARD} (trained before runs carried "
                             "one): train it again with --force")
        card = json.loads(card_path.read_text())
        if card["backbone"] == "pop":
            raise InputError(f"run {folder}: a popularity run has no model to load "
                             "(recommend and export serve the neural backbones)")
        data = Path(card["dataset_path"])
        if not (data / "meta.json").is_file() or read_meta(data)["fingerprint"] != card["fingerprint"]:
            raise InputError(f"run {folder}: its prepared dataset {data} is gone or changed "
                             f"(fingerprint {card['fingerprint']}); prepare it again")
        if not best.is_file():
            raise InputError(f"run {folder} has no best.pt (still training, or cut short)")
        from pipeline import checkpoint

        cfg = TrainConfig.model_validate_json((folder / "config.json").read_text())
        state = checkpoint.load(best)["model"]
        dataset = Dataset.load(data)
        if card["method"].startswith("llmesr"):
            model = _llmesr_model(state, cfg, dataset.n_items)
        else:
            model = build_model(cfg, dataset.n_items, _item_embedding(state, cfg, dataset.n_items))
        model.load_state_dict(state)
        return cls(folder, cfg, dataset, model.eval(), card)

    @property
    def name(self) -> str:
        return f"{self.dataset.name}/{self.folder.name}"

    # ---- raw ids <-> model rows ----------------------------------------------------------

    def item_ids(self, raw: list[str], skip_unknown: bool = False) -> list[int]:
        return item_ids(self.dataset, raw, skip_unknown)

    # ---- scoring -------------------------------------------------------------------------

    @torch.no_grad()
    def score_all(self, histories: list[list[int]]) -> torch.Tensor:
        """[B, N+1] scores of every item for each history of internal ids (column 0: pad)."""
        from models.sequences import pad_left

        seq = pad_left([np.asarray(h, dtype=np.int64) for h in histories], self.config.model.max_len)
        return self.model.score_all(self.model(seq)).float()  # [B, D] -> [B, N+1]

    def top_k(self, histories: list[list[int]], k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """([B, k] scores, [B, k] internal ids): best first, the history and pad excluded."""
        scores = self.score_all(histories)
        scores[:, 0] = -torch.inf
        for row, hist in enumerate(histories):
            scores[row, torch.as_tensor(hist, dtype=torch.long)] = -torch.inf
        k = min(k, self.dataset.n_items)
        return torch.topk(scores, k, dim=1)

    def recommend(self, raw_history: list[str], k: int = 10,
                  skip_unknown: bool = False) -> list[dict]:
        """Top-k for one history of raw item ids: [{rank, item, title, score}], best first."""
        return self.recommend_many([raw_history], k, skip_unknown)[0]

    def recommend_ann(self, raw_history: list[str], index, k: int = 10,
                      skip_unknown: bool = False) -> list[dict]:
        """Top-k through a vector index over the run's exported item table (`llm4srs export`;
        inner product, ids 1..N) instead of scoring every item: for large catalogues."""
        hist = self.item_ids(raw_history, skip_unknown)
        if not hist:
            raise InputError("the history has no known item left: nothing to recommend from")
        from models.sequences import pad_left

        with torch.no_grad():
            user = self.model(pad_left([np.asarray(hist)], self.config.model.max_len)).float()
        ids, scores = index.search(user.numpy(), k + len(set(hist)))
        seen = set(hist)
        kept = [(i, s) for i, s in zip(ids[0].tolist(), scores[0].tolist(), strict=True)
                if i > 0 and i not in seen][:k]
        raw, titles = raw_ids(self.dataset), _titles(self.dataset.items.sort("item_id"))
        return [{"rank": r + 1, "item": raw[i - 1], "title": titles[i - 1], "score": float(s)}
                for r, (i, s) in enumerate(kept)]

    def recommend_many(self, raw_histories: list[list[str]], k: int = 10,
                       skip_unknown: bool = False) -> list[list[dict]]:
        histories = [self.item_ids(h, skip_unknown) for h in raw_histories]
        if any(not h for h in histories):
            raise InputError("a history has no known item left: nothing to recommend from")
        values, ids = self.top_k(histories, k)
        raw, titles = raw_ids(self.dataset), _titles(self.dataset.items.sort("item_id"))
        return [[{"rank": r + 1, "item": raw[i - 1], "title": titles[i - 1], "score": float(v)}
                 for r, (i, v) in enumerate(zip(row_ids.tolist(), row_vals.tolist(), strict=True))]
                for row_ids, row_vals in zip(ids, values, strict=True)]


def item_ids(dataset: Dataset, raw: list[str], skip_unknown: bool = False) -> list[int]:
    """Internal ids 1..N of raw item ids; unknown ones: one InputError naming them, or left
    out with `skip_unknown`."""
    index = dict(zip(dataset.items["raw_id"].cast(pl.String).to_list(),
                     dataset.items["item_id"].to_list(), strict=True))
    unknown = [r for r in raw if str(r) not in index]
    if unknown and not skip_unknown:
        shown = ", ".join(map(str, unknown[:5])) + (" …" if len(unknown) > 5 else "")
        raise InputError(f"{len(unknown)} item id(s) not in dataset {dataset.name}: "
                         f"{shown} (--skip-unknown leaves them out)")
    return [index[str(r)] for r in raw if str(r) in index]


def raw_ids(dataset: Dataset) -> list[str]:
    """Raw item ids in internal-id order: element i-1 is item i's."""
    return dataset.items.sort("item_id")["raw_id"].cast(pl.String).to_list()


def _item_embedding(state: dict, cfg: TrainConfig, n_items: int):
    """The item embedding a checkpoint was trained with, rebuilt from its tensors' shapes."""
    from models.item_emb import FrozenAdapterEmbedding, IdEmbedding

    if "item_emb.frozen" in state:  # llm-frozen_adapter: the frozen table is in the state
        frozen = state["item_emb.frozen"]
        hidden = state["item_emb.adapter.0.weight"].shape[0]
        return FrozenAdapterEmbedding(torch.zeros_like(frozen), cfg.model.dim, hidden)
    return IdEmbedding(n_items, cfg.model.dim)  # id and llm-init: a trained table


def _llmesr_model(state: dict, cfg: TrainConfig, n_items: int) -> torch.nn.Module:
    """An LLM-ESR model shaped like its checkpoint, for load_state_dict: the views present
    in the state (the frozen LLM table is a buffer there, so no store is read) around the
    run's backbone, with the run's own `llmesr` switches."""
    from models.item_emb import FrozenAdapterEmbedding, IdEmbedding
    from models.srs.llmesr import LLMESR

    collaborative = semantic = None
    if "item_emb.collaborative.table.weight" in state:
        collaborative = IdEmbedding(n_items, cfg.model.dim)
    if "item_emb.semantic.frozen" in state:
        frozen = state["item_emb.semantic.frozen"]  # [N, P]
        hidden = state["item_emb.semantic.adapter.0.weight"].shape[0]
        semantic = FrozenAdapterEmbedding(torch.zeros_like(frozen), cfg.model.dim, hidden)
    return LLMESR(cfg.model, cfg.llmesr, collaborative, semantic)


def _titles(items: pl.DataFrame) -> list[str]:
    """A display title per item: `title` when the dataset has one, else its first text
    column, else the raw id."""
    for col in ("title", *[c for c in items.columns if c not in ("item_id", "raw_id")]):
        if col in items.columns and items[col].dtype == pl.String:
            return [t if t else r for t, r in zip(items[col].fill_null("").to_list(),
                                                  items["raw_id"].cast(pl.String).to_list(),
                                                  strict=True)]
    return items["raw_id"].cast(pl.String).to_list()


def read_histories(path: Path) -> tuple[list[str], list[list[str]]]:
    """(users, raw histories) from a Parquet/CSV with columns `user` and `history` (a list
    column, or ids separated by spaces or commas), oldest first."""
    if not path.is_file():
        raise InputError(f"{path} does not exist")
    try:
        frame = (pl.read_parquet(path) if path.suffix.lower() == ".parquet"
                 else pl.read_csv(path, infer_schema_length=0))
    except (pl.exceptions.PolarsError, OSError) as e:
        raise InputError(f"{path}: cannot read ({str(e).splitlines()[0]})") from None
    missing = [c for c in ("user", "history") if c not in frame.columns]
    if missing:
        raise InputError(f"{path} lacks column(s) {missing}; columns present: {frame.columns}")
    col = frame["history"]
    if col.dtype == pl.String:
        col = col.str.replace_all(",", " ").str.split(" ").list.eval(
            pl.element().filter(pl.element() != ""))
    histories = [[str(x) for x in (h or [])] for h in col.to_list()]
    return frame["user"].cast(pl.String).to_list(), histories


def write_top_k(users: list[str], recs: list[list[dict]], out: Path) -> Path:
    """A Parquet of (user, rank, item, title, score), written aside then renamed."""
    from embeddings_store.atomic import atomic_path

    rows = [{"user": u, **r} for u, rec in zip(users, recs, strict=True) for r in rec]
    with atomic_path(out) as tmp:
        pl.DataFrame(rows, schema={"user": pl.String, "rank": pl.Int32, "item": pl.String,
                                   "title": pl.String, "score": pl.Float64}).write_parquet(tmp)
    return out


# ---- export ---------------------------------------------------------------------------------


# Largest |exported - PyTorch| an exported encoder may show on real histories (issue #18).
PARITY_TOL = 1e-5
# An ONNX file is one protobuf, which cannot pass 2 GiB; beyond that the weights would go
# to a side file, which the write-aside-then-rename below does not carry.
ONNX_MAX_BYTES = 2 << 30


class _Encoder(torch.nn.Module):
    """The sequence encoder alone: item ids [B, T] (left-padded, 0 = pad) -> user [B, D]."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        return self.model(seq)


def _example_batches(run: TrainedRun, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two batches of the dataset's real histories (each user's training part), left-padded
    to the run's window: `batch` users to trace with, and `batch + 3` others to check with
    (another size, so the dynamic batch axis is exercised too)."""
    from models.sequences import pad_left

    seqs = [np.asarray(s[:-2], dtype=np.int64) for s in run.dataset.sequences]
    example, check = seqs[:batch], seqs[batch:2 * batch + 3] or seqs[:1]
    t = run.config.model.max_len
    return pad_left(example, t), pad_left(check, t)


def _gru_unpacked(self, x: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
    """GRU4Rec.encode_vectors with the GRU run over the right-padded view as it is, not
    packed (see _traceable): same parameters, same outputs at real positions."""
    t = seq.shape[1]
    lengths = (seq > 0).sum(1)  # [B]
    ar = torch.arange(t, device=seq.device)[None]  # [1, T]
    shift = (t - lengths)[:, None]  # [B, 1] leading pads
    gather = (ar + shift).clamp(max=t - 1)[..., None].expand(-1, -1, x.shape[-1])
    out, _ = self.gru(self.drop(x.gather(1, gather)))  # [B, T, D], right-padded
    back = (ar - shift).clamp(min=0)[..., None].expand(-1, -1, out.shape[-1])
    h = out.gather(1, back) * (seq > 0)[..., None]  # left-padded again
    return self.out(self.drop(h))


@contextlib.contextmanager
def _traceable(model: torch.nn.Module) -> Iterator[None]:
    """While exporting, every GRU4Rec in `model` (the backbone, or LLM-ESR's encoders) runs
    its GRU unpacked.

    GRU4Rec packs its sequences (pack_padded_sequence), whose per-step batch sizes are read
    from the data: torch.export cannot trace that (torch.zeros of a data-dependent size),
    and the legacy TorchScript exporter (dynamo=False, deprecated) traces it into a graph
    that is off by ~0.1. A one-directional GRU's output at a real position depends only on
    the items up to it, so running it over the right-padded view unpacked gives the same
    outputs there, and padding positions are zeroed as before. The exports' parity checks
    compare with the packed model, outside this context.
    """
    from models.srs.gru4rec import GRU4Rec

    grus = [m for m in model.modules() if isinstance(m, GRU4Rec)]
    for m in grus:
        m.encode_vectors = types.MethodType(_gru_unpacked, m)
    try:
        yield
    finally:
        for m in grus:
            del m.encode_vectors


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence what torch's exporters say that a user of `export` cannot act on: one logged
    warning per torchvision operator the ONNX exporter cannot register (torchvision is not
    installed), deprecation notices from torch's own internals (`LeafSpec`), and, for
    GRU4Rec, nn.GRU refreshing its `_flat_weights` list during the trace (the same
    parameters, exported as such)."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", r".*LeafSpec.* is deprecated", FutureWarning)
            warnings.filterwarnings("ignore", r".*_flat_weights.* were assigned during export",
                                    UserWarning)
            yield
    finally:
        logger.setLevel(level)


def export_item_table(run: TrainedRun, store) -> str:
    """The run's final item vectors ([N, D], row i-1 <-> item i, what it scores with) as a
    kind of its own, `items/run-<run folder>`, with lineage to the stored kind it was
    trained from. Returns the exact ref."""
    from embeddings_store import ManifestInput, Parent, Producer

    with torch.no_grad():
        table = run.model.item_emb.scoring_table()[1:].float().numpy()  # [N, D]
    parents = []
    if run.card.get("embedding"):
        up = store.resolve(run.card["embedding"])
        parents.append(Parent(kind=up.kind, version=up.version, dataset=up.dataset))
    info = ManifestInput(
        dataset_fingerprint=run.dataset.fingerprint, metric="ip",
        producer=Producer(generator="export", config={
            "run": run.name, "method": run.card["method"], "backbone": run.card["backbone"],
            "seed": run.card["seed"], "config_hash": run.card["config_hash"]}),
        parents=parents)
    ref = store.write(run.dataset.name, f"items/run-{run.folder.name}",
                      np.arange(1, run.dataset.n_items + 1), table, info)
    return str(ref)


def export_encoder(run: TrainedRun, path: Path, batch: int = 4) -> tuple[Path, float]:
    """The encoder as a `torch.export` program (`.pt2`: torch.export.load(path).module()),
    any batch size, window `max_len`; returns (path, largest |difference| from PyTorch on
    two batches of the dataset's real histories)."""
    from embeddings_store.atomic import atomic_path

    encoder = _Encoder(run.model).eval()
    example, check = _example_batches(run, batch)
    dims = {"seq": {0: torch.export.Dim("batch", min=1, max=1 << 16)}}
    with _traceable(run.model), _quiet_exporter():
        program = torch.export.export(encoder, (example,), dynamic_shapes=dims)
        with atomic_path(path, suffix=".pt2") as tmp:
            torch.export.save(program, str(tmp))
        loaded = torch.export.load(str(path)).module()
    with torch.no_grad():
        gap = max((loaded(b) - encoder(b)).abs().max().item() for b in (example, check))
    return path, gap


def export_onnx(run: TrainedRun, path: Path, batch: int = 4) -> tuple[Path, float]:
    """The encoder as ONNX (torch's dynamo exporter): input `seq`, int64 [batch, max_len],
    left-padded internal item ids (0 = padding, most recent last), any batch size, the
    window fixed at the run's `max_len`; output `user`, float32 [batch, D], what
    `run.model(seq)` returns. Score items as the run does, by inner product with its item
    table (`export_item_table`: `items/run-<run>`, row i-1 = item i).

    Written aside, run with onnxruntime (CPU) on two batches of the dataset's real
    histories and compared with PyTorch; renamed into place only when the largest
    |difference| is at most PARITY_TOL, else RuntimeError and nothing is written. Returns
    (path, that difference). The file's metadata names the run (`llm4srs.run`), its
    dataset fingerprint and config hash.

    A downstream job needs onnxruntime and numpy only (examples/onnx_encoder.py)::

        import numpy as np, onnxruntime as ort
        sess = ort.InferenceSession("runs/<dataset>/<run>/encoder.onnx",
                                    providers=["CPUExecutionProvider"])
        window = sess.get_inputs()[0].shape[1]             # the run's max_len
        seq = np.zeros((1, window), np.int64)
        seq[0, -3:] = [12, 7, 3]                            # internal ids, oldest first
        user = sess.run(["user"], {"seq": seq})[0]          # [1, D]
        scores = user @ items.T                             # items: [N, D], row i-1 = item i
    """
    import onnxruntime as ort  # here, not at the top: `llm4srs --help` must stay fast

    from embeddings_store.atomic import atomic_path

    encoder = _Encoder(run.model).eval()
    size = sum(t.numel() * t.element_size()
               for t in itertools.chain(encoder.parameters(), encoder.buffers()))
    if size > ONNX_MAX_BYTES:
        raise InputError(f"run {run.name}: its encoder's weights ({size / 2**30:.1f} GiB) pass "
                         "ONNX's 2 GiB single-file limit; use the torch.export program "
                         "(encoder.pt2) instead")
    example, check = _example_batches(run, batch)
    with torch.no_grad():
        want = [encoder(b).numpy() for b in (example, check)]
    dims = {"seq": {0: torch.export.Dim("batch", min=1, max=1 << 16)}}
    with _traceable(run.model), _quiet_exporter():
        program = torch.onnx.export(encoder, (example,), dynamo=True, input_names=["seq"],
                                    output_names=["user"], dynamic_shapes=dims, verbose=False)
    program.model.metadata_props.update({
        "llm4srs.run": run.name, "llm4srs.fingerprint": run.dataset.fingerprint,
        "llm4srs.config_hash": str(run.card.get("config_hash", "")),
        "llm4srs.max_len": str(run.config.model.max_len)})
    with atomic_path(path, suffix=".onnx") as tmp:
        program.save(str(tmp), external_data=False)
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        session = ort.InferenceSession(str(tmp), options, providers=["CPUExecutionProvider"])
        gap = max(float(np.abs(session.run(["user"], {"seq": b.numpy()})[0] - w).max())
                  for b, w in zip((example, check), want, strict=True))
        if not gap <= PARITY_TOL:  # NaN too
            raise RuntimeError(f"the ONNX encoder of {run.name} differs from PyTorch by "
                               f"{gap:.2e} (> {PARITY_TOL:.0e}); not written")
    return path, gap
