"""The comparison grid: (item embedding × method × backbone × seed) cells, planned from
what the store holds for a dataset, under the budget preset of configs/compare.yaml.

Pure planning: nothing here trains. `flows/compare.py` turns each `Cell` into one call of
the cached SRS train task, so a cell done before costs nothing.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Collection, Hashable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from embeddings_store import EmbeddingStore
from embeddings_store.errors import StoreError
from pipeline.data.dataset import Dataset
from pipeline.errors import InputError
from pipeline.presets import CONFIG_DIR, read_mapping
from pipeline.store_io import resolve_kind

PRESET = CONFIG_DIR / "compare.yaml"
K = TypeVar("K", bound=Hashable)  # what `validation_means` groups runs by
BASE_METHODS = ("id", "llm-init", "llmesr")
# LLM-ESR ablations (METHODS.md §3.6) and variants: name -> overrides of the llmesr cell.
# `stacked`: the semantic view on the grid's first kind, the ID view initialised from
# LLMEmb's RAT table instead of that kind's PCA (skipped when the store has no such kind);
# `llmesr-exact`, `llmesr-cached`: RASD's other teachers (models/losses/rasd.py; the preset's
# LLM-ESR cells use `llmesr.teacher=validation`), the paper's per-step one and a per-epoch cache.
DEFAULT_ABLATIONS: dict[str, dict[str, Any]] = {
    "llmesr-nodistill": {"llmesr.distill_weight": 0},
    "llmesr-nocross": {"llmesr.cross_attention": False},
    "llmesr-exact": {"llmesr.teacher": "exact"},
    "llmesr-cached": {"llmesr.teacher": "cached"},
    "stacked": {"llmesr.id_from": "items/llmemb-rat"},
}
# Item kinds that are not LLM item embeddings: the ID table LLMEmb aligns to, and E4SRec's
# trained output head.
EXCLUDED_KINDS = ("items/sasrec-id", "items/e4srec-head")
# CPU seconds per epoch on one thread under configs/compare.yaml (ML-100k, measured; the
# nodistill entries of GRU4Rec/BERT4Rec estimated), for longest-first scheduling only.
_COST = {"sasrec": {"srs": 3.1, "llmesr": 8.4, "nodistill": 5.2},
         "gru4rec": {"srs": 1.8, "llmesr": 6.1, "nodistill": 3.5},
         "bert4rec": {"srs": 3.0, "llmesr": 19.5, "nodistill": 9.0}}


def _known_backbones(sections: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    from pipeline.config import backbone_names

    unknown = sorted(set(sections) - set(backbone_names()))
    if unknown:
        raise ValueError(f"unknown backbone {', '.join(unknown)}; choose from "
                         f"{', '.join(backbone_names())}")
    return sections


BackboneOverrides = Annotated[dict[str, dict[str, Any]], AfterValidator(_known_backbones)]


class DatasetBudget(BaseModel):
    """One entry of the preset's `datasets:`: a dataset's own budget (configs/compare.yaml)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    # False: `overrides`/`llmesr_overrides` below go on top of the global ones; True: they
    # take their place ({} then means the backbones' full configs/srs/<backbone>.yaml).
    replace_overrides: bool = False
    overrides: dict[str, Any] = {}
    backbone_overrides: BackboneOverrides = {}
    init_overrides: dict[str, Any] = {}
    llmesr_overrides: dict[str, Any] = {}
    backbones: list[str] | None = Field(None, min_length=1)  # None: the global `backbones`


class ComparePreset(BaseModel):
    """configs/compare.yaml: the budget every cell runs under (see the file's comments)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    overrides: dict[str, Any] = {}
    # One backbone's cells' own settings (every method), after `overrides`: backbone -> dict.
    backbone_overrides: BackboneOverrides = {}
    init_overrides: dict[str, Any] = {}  # the llm-init cells' own settings, after `overrides`
    llmesr_overrides: dict[str, Any] = {}  # LLM-ESR's (and its ablations'), after `overrides`
    concurrency: int = Field(2, ge=1)
    kinds: list[str] = ["items/semantic-*", "items/llmemb-rat", "items/fused"]
    ablation_backbones: list[str] = ["sasrec"]
    llmesr_all_kinds: bool = False  # False: LLM-ESR on the first item kind only
    backbones: list[str] = Field(["sasrec", "gru4rec", "bert4rec"], min_length=1)
    datasets: dict[str, DatasetBudget] = {}  # dataset name -> its own budget

    def for_dataset(self, name: str) -> ComparePreset:
        """The budget of dataset `name`: its `datasets:` entry applied to the global one.
        Without an entry it is this preset itself, so those datasets' cells keep their exact
        overrides (and config hashes: their cached runs are reused)."""
        entry = self.datasets.get(name)
        if entry is None:
            return self
        keep = not entry.replace_overrides
        mine = self.backbone_overrides if keep else {}
        per_backbone = {b: {**mine.get(b, {}), **entry.backbone_overrides.get(b, {})}
                        for b in {*mine, *entry.backbone_overrides}}
        return self.model_copy(update={
            **{section: {**(getattr(self, section) if keep else {}), **getattr(entry, section)}
               for section in ("overrides", "init_overrides", "llmesr_overrides")},
            "backbone_overrides": per_backbone,
            "backbones": entry.backbones or self.backbones})

    def cell_overrides(self, overrides: dict[str, Any] | None,
                       method: Literal["id", "llm-init", "llmesr"] = "id",
                       backbone: str | None = None) -> dict[str, Any]:
        """What a cell trains under: the budget, its backbone's section of
        `backbone_overrides`, the method's own section (`init_overrides` for llm-init cells,
        `llmesr_overrides` for LLM-ESR's), then the caller's overrides."""
        section = {"id": {}, "llm-init": self.init_overrides, "llmesr": self.llmesr_overrides}[method]
        return {**self.overrides, **self.backbone_overrides.get(backbone or "", {}), **section,
                **(overrides or {})}


def load_preset(path: Path | None = None) -> ComparePreset:
    path = path or PRESET
    try:
        return ComparePreset(**read_mapping(path, "compare preset"))
    except ValidationError as e:
        raise InputError(f"compare preset {path}: {e}") from None


class Cell(BaseModel):
    """One training run of the grid; `method` is the label its result rows carry."""

    model_config = ConfigDict(frozen=True)
    method: str  # id | llm-init | llmesr | an ablation name
    backbone: str
    seed: int
    embedding: str | None = None  # resolved items/… reference
    user_embedding: str | None = None  # resolved users/… reference (LLM-ESR's neighbours)
    train_method: str = "srs"  # the train task's `method`: srs | llmesr
    overrides: dict[str, Any] = {}  # everything the cell trains under (preset included)

    @property
    def cost(self) -> float:
        """Relative training cost (see _COST); RASD's neighbour forwards dominate LLM-ESR."""
        kind = self.train_method
        if kind == "llmesr" and not self.overrides.get("llmesr.distill_weight", 1):
            kind = "nodistill"
        return _COST.get(self.backbone, _COST["sasrec"]).get(kind, 1.0)

    @property
    def name(self) -> str:
        kind = f" {short_kind(self.embedding)}" if self.embedding else ""
        return f"{self.backbone} {self.method}{kind} s{self.seed}"

    def label(self, rows: list[dict]) -> list[dict]:
        """The cell's result rows, carrying its method label (an ablation's name, …)."""
        return [{**r, "method": self.method} for r in rows]


def short_kind(ref: str | None) -> str | None:
    """`dataset/items/semantic-smollm2@v0003` (or `items/x`) -> `semantic-smollm2`."""
    if not ref:
        return None
    return ref.split("@")[0].rsplit("/", 1)[-1]


def store_kinds(store_root: str | Path, dataset: str, entity: str) -> list[str]:
    """`entity/*` kinds of `dataset` that have a readable current version, sorted."""
    store = EmbeddingStore(store_root)
    kinds = sorted({v.kind for v in store.list(dataset) if v.kind.startswith(f"{entity}/")})
    out = []
    for kind in kinds:
        try:
            store.resolve(kind, dataset=dataset)
        except StoreError:
            continue  # no CURRENT (an interrupted first write): nothing to compare
        out.append(kind)
    return out


def _semantic_first(kinds: list[str]) -> list[str]:
    return sorted(kinds, key=lambda k: (not short_kind(k).startswith("semantic-"), k))


def select_kinds(available: list[str], wanted: list[str] | None,
                 patterns: list[str] | None = None, dataset: str | None = None) -> list[str]:
    """The item kinds of the grid, LLM-ESR's semantic view first.

    wanted None: `patterns` (fnmatch) over the available kinds, or every kind but the
    excluded ones when `patterns` is None or matches nothing; a list: those kinds (each
    must exist; "items/" may be left out).
    """
    usable = [k for k in available if k not in EXCLUDED_KINDS]
    if not usable:
        where = f" for {dataset}" if dataset else " for this dataset"
        run = f"llm4srs embed --dataset {dataset}" if dataset else "llm4srs embed"
        raise InputError(f"no item embeddings (items/…) in the store{where}; run `{run}` first")
    if wanted is None:
        chosen = [k for k in usable if any(fnmatch.fnmatch(k, p) for p in patterns or [])]
        return _semantic_first(chosen or usable)
    out = []
    for kind in wanted:
        kind = kind if "/" in kind else f"items/{kind}"
        if kind not in available:
            raise InputError(f"--kinds: {kind} is not in the store (have: {', '.join(usable)})")
        if not kind.startswith("items/"):
            raise InputError(f"--kinds: {kind} is not an item kind (items/…)")
        out.append(kind)
    return list(dict.fromkeys(out))


def pick_user_kind(items_kind: str, user_kinds: list[str]) -> str | None:
    """users/<same name> as the item kind, else a users/semantic-* kind, else None."""
    same = f"users/{short_kind(items_kind)}"
    if same in user_kinds:
        return same
    semantic = [k for k in user_kinds if short_kind(k).startswith("semantic-")]
    return semantic[0] if semantic else None


def grid_embeddings(dataset: Dataset, store_root: str | Path, kinds: list[str] | None
                    ) -> tuple[list[str], dict[str, str | None]]:
    """(item refs in grid order, item ref -> the user ref LLM-ESR retrieves neighbours with),
    every ref resolved to its exact `dataset/kind@version` (see `select_kinds`)."""
    store = EmbeddingStore(store_root)
    user_kinds = store_kinds(store_root, dataset.name, "users")
    items: list[str] = []
    users: dict[str, str | None] = {}
    for kind in select_kinds(store_kinds(store_root, dataset.name, "items"), kinds,
                             dataset=dataset.name):
        ref = resolve_kind(dataset, store_root, kind, "items")
        user_kind = pick_user_kind(kind, user_kinds)
        users[ref] = str(store.resolve(user_kind, dataset=dataset.name)) if user_kind else None
        items.append(ref)
    return items, users


def methods_for(methods: list[str] | None, ablations: dict[str, dict], llmesr: bool) -> list[str]:
    """Validated method names; None = every base method and ablation (LLM-ESR's only when
    the train task supports it)."""
    known = [*BASE_METHODS, *ablations]
    if methods is None:
        return [m for m in known if llmesr or (m != "llmesr" and m not in ablations)]
    unknown = [m for m in methods if m not in known]
    if unknown or not methods:
        raise InputError(f"unknown method {', '.join(unknown) or '(none)'}; choose from "
                         f"{', '.join(known)}")
    if not llmesr and any(m == "llmesr" or m in ablations for m in methods):
        raise InputError("LLM-ESR is not available in this build (flows.srs.train has no "
                         "`method` parameter)")
    return list(dict.fromkeys(methods))


def plan_cells(backbones: list[str], seeds: list[int], items: list[str],
               users: dict[str, str | None], methods: list[str],
               ablations: dict[str, dict], preset: ComparePreset,
               overrides: dict[str, Any] | None = None) -> tuple[list[Cell], list[str]]:
    """(cells, notes). `items`: resolved item refs in grid order; `users[item_ref]`: the
    resolved user ref LLM-ESR retrieves neighbours with (None: LLM-ESR is skipped for that
    kind, with a note). LLM-ESR runs on the first item kind (every kind with the preset's
    `llmesr_all_kinds`); its ablations on the first kind and `ablation_backbones` (or the
    first backbone when none of those is in the grid)."""
    abl_backbones = [b for b in backbones if b in preset.ablation_backbones] or backbones[:1]
    cells: list[Cell] = []
    notes: list[str] = []
    for backbone in backbones:
        common = preset.cell_overrides(overrides, "id", backbone)
        init_common = preset.cell_overrides(overrides, "llm-init", backbone)
        llmesr_common = preset.cell_overrides(overrides, "llmesr", backbone)
        for seed in seeds:
            if "id" in methods:
                cells.append(Cell(method="id", backbone=backbone, seed=seed, overrides=common))
            for i, ref in enumerate(items):
                if "llm-init" in methods:
                    cells.append(Cell(method="llm-init", backbone=backbone, seed=seed,
                                      embedding=ref, overrides=init_common))
                names = ["llmesr"] if "llmesr" in methods and (
                    i == 0 or preset.llmesr_all_kinds) else []
                if i == 0 and backbone in abl_backbones:
                    names += [m for m in methods if m in ablations]
                for name in names:
                    extra = ablations.get(name, {})
                    id_from = extra.get("llmesr.id_from")
                    if id_from and not any(short_kind(r) == short_kind(id_from) for r in items):
                        note = f"{name}: skipped, {id_from} is not among the grid's item kinds"
                        notes += [] if note in notes else [note]
                        continue
                    distill = extra.get("llmesr.distill_weight", 1) != 0
                    if distill and users.get(ref) is None:
                        note = f"{name} on {short_kind(ref)}: skipped, no users/* kind in the store"
                        notes += [] if note in notes else [note]
                        continue
                    cells.append(Cell(method=name, backbone=backbone, seed=seed, embedding=ref,
                                      user_embedding=users.get(ref) if distill else None,
                                      train_method="llmesr",
                                      overrides={**llmesr_common, **extra}))
    return cells, notes


def validation_means(rows: list[dict], runs_dir: str | Path, key: Callable[[dict], K | None]
                     ) -> tuple[dict[K, float], dict[K, list[str]]]:
    """Mean **validation** full NDCG@10 per `key(row)` over the distinct runs its rows name,
    each read from the run's run.json `valid_rows` (test never chooses): (means, runs).
    Rows whose key is None or that name no run are left out; a key none of whose run.json
    exists has runs but no mean."""
    import json
    import statistics

    from pipeline.evaluate import pick

    runs: dict[K, list[str]] = {}
    for row in rows:
        k = key(row)
        if k is not None and row.get("run"):
            names = runs.setdefault(k, [])
            if row["run"] not in names:
                names.append(row["run"])
    means: dict[K, float] = {}
    for k, names in runs.items():
        cards = [Path(runs_dir) / name / "run.json" for name in names]
        values = [pick(json.loads(c.read_text())["valid_rows"]) for c in cards if c.is_file()]
        if values:
            means[k] = statistics.fmean(values)
    return means, runs


def validation_winner(rows: list[dict], runs_dir: str | Path,
                      method: str = "llm-init") -> tuple[str, float, dict] | None:
    """The stored item version whose `method` runs have the best mean validation full
    NDCG@10 over backbones and seeds (`validation_means`), with the evidence:
    (exact ref, value, {"per_version": {ref: mean}, "runs": {ref: [run, …]}}). None when no
    row of `method` names a run."""
    means, runs = validation_means(
        rows, runs_dir, lambda r: r.get("embedding") if r.get("method") == method else None)
    if not means:
        return None
    best = max(means, key=means.__getitem__)
    return best, means[best], {"method": method, "per_version": means, "runs": runs}


# --- `llm4srs compare` over several datasets: every one checked before any trains -------

class DatasetCheck(BaseModel):
    """One dataset of `llm4srs compare`, checked: what its `compare_flow` run takes."""

    model_config = ConfigDict(frozen=True)
    spec: str  # as given to --dataset (a source, `source:PATH`, a preset, a YAML file)
    name: str  # its name: the store's and runs/' folder, the key of the preset's `datasets:`
    backbones: list[str]
    kinds: list[str] | None  # resolved item kinds; None when only `id` runs


def check_backbones(names: list[str]) -> list[str]:
    """`names` when every one is a known SRS backbone, else InputError."""
    from models.srs import BACKBONES  # pop has no item table to compare

    unknown = [b for b in names if b not in BACKBONES]
    if unknown or not names:
        raise InputError(f"unknown backbone {', '.join(unknown) or '(none)'}; choose from "
                         f"{', '.join(BACKBONES)}")
    return names


def check_dataset(spec: str, *, backbones: list[str] | None,
                  kinds: list[str] | Literal["all"] | None, methods: list[str],
                  overrides: dict[str, Any], preset: ComparePreset, store_root: str | Path,
                  data_dir: str | Path, optional: Collection[str] = ()) -> DatasetCheck | str:
    """Everything about one dataset that can fail before training: its spec, its raw data,
    its backbones (None: the preset's for it), its item kinds in the store (kinds None: the
    preset's patterns; "all": every item kind) and the overrides against every backbone's
    config under its budget. InputError on the first problem; for a dataset named (by spec
    or name) in `optional`, missing data or item embeddings give the one line saying why it
    is skipped instead."""
    from pipeline.config import load_train_config
    from pipeline.data.config import resolve_dataset
    from pipeline.data.prepare import missing_source

    cfg = resolve_dataset(spec)  # fail fast on a bad spec
    name = cfg.dataset_name
    skip = spec in optional or name in optional
    budget = preset.for_dataset(name)
    chosen = check_backbones(backbones or budget.backbones)
    absent = missing_source(cfg, Path(data_dir))
    if absent is not None:
        if skip:
            return f"skipped {spec}: no data at {absent}"
        raise InputError(f"{spec}: no data at {absent}")
    kind_list: list[str] | None = None
    if any(m != "id" for m in methods):
        available = store_kinds(store_root, name, "items")
        if skip and not [k for k in available if k not in EXCLUDED_KINDS]:
            return (f"skipped {spec}: the store holds no item embeddings for it; build them "
                    f"with `llm4srs embed llmemb --dataset {spec}`")
        patterns = None if kinds == "all" else budget.kinds
        wanted = None if kinds == "all" else kinds
        kind_list = select_kinds(available, wanted, patterns, dataset=spec)
    for b in chosen:  # bad overrides fail here, not an hour in
        load_train_config(b, budget.cell_overrides(overrides, "id", b))
        if "llm-init" in methods:
            load_train_config(b, budget.cell_overrides(overrides, "llm-init", b))
        if any(m.startswith("llmesr") for m in methods):
            load_train_config(b, budget.cell_overrides(overrides, "llmesr", b), method="llmesr")
    return DatasetCheck(spec=spec, name=name, backbones=chosen, kinds=kind_list)


def check_datasets(specs: list[str], **common: Any) -> tuple[list[DatasetCheck], list[str]]:
    """`check_dataset` for every spec (a repeated dataset once): (checked, skip lines). With
    several, an error names its dataset; when every dataset is skipped, InputError."""
    checked: list[DatasetCheck] = []
    skipped: list[str] = []
    for spec in dict.fromkeys(specs):
        try:
            out = check_dataset(spec, **common)
        except InputError as e:
            if len(specs) > 1 and spec not in str(e):
                raise InputError(f"{spec}: {e}") from None
            raise
        if isinstance(out, str):
            skipped.append(out)
        elif out.name not in {c.name for c in checked}:
            checked.append(out)
    if not checked:
        raise InputError("nothing to compare: " + "; ".join(skipped))
    return checked, skipped
