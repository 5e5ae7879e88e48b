"""Recommendations from a trained stage-2 run, for histories given as *raw* item ids.

A run folder (`runs/<dataset>/<run>/`) holds `config.json`, `best.pt` and `run.json` (the
card `pipeline.runs.train_one` writes: dataset folder and fingerprint, method, stored
inputs). `TrainedRun.load` rebuilds the model from them alone — no store, no Prefect — and
`recommend` ranks the whole catalogue for a history of the user's own item ids, the history
itself excluded, so a user the model never saw is served like any other.
"""

from __future__ import annotations

import json
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
        if card["backbone"] == "pop" or card["method"].startswith("llmesr"):
            raise InputError(f"run {folder}: recommend serves single-view backbones "
                             f"(id, llm-init, llm-frozen_adapter), not {card['method']}")
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


class _Encoder(torch.nn.Module):
    """The sequence encoder alone: item ids [B, T] (left-padded, 0 = pad) -> user [B, D]."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        return self.model(seq)


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
    a batch of the dataset's real histories)."""
    from embeddings_store.atomic import atomic_path
    from models.sequences import pad_left

    encoder = _Encoder(run.model).eval()
    seqs = [np.asarray(s[:-2], dtype=np.int64) for s in run.dataset.sequences[:batch]]
    example = pad_left(seqs, run.config.model.max_len)  # [B, T]
    dims = {"seq": {0: torch.export.Dim("batch", min=1, max=1 << 16)}}
    program = torch.export.export(encoder, (example,), dynamic_shapes=dims)
    with atomic_path(path, suffix=".pt2") as tmp:
        torch.export.save(program, str(tmp))
    loaded = torch.export.load(str(path)).module()
    with torch.no_grad():
        gap = (loaded(example) - encoder(example)).abs().max().item()
    return path, gap
