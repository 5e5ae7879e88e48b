"""What one `llm4srs train` (or one scheduled `srs` flow run) asks for, as one object.

The CLI builds a `TrainRequest` from its options and calls `checked()` once: names come
from the registries, overrides become one resolved `TrainConfig` per backbone, stored kinds
are found and fit the dataset. The checked request goes to the flow whole; the flow and
`pipeline.runs` read its configs and never load or validate them again. A request that
arrives unchecked (a deployment's JSON parameters) is checked by the flow, once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pipeline.config import TrainConfig
from pipeline.errors import InputError


class TrainRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str = "movielens-100k"  # a source, source:PATH, preset or YAML (resolve_dataset)
    backbones: list[str] = Field(default_factory=lambda: ["sasrec"])
    seeds: list[int] = Field(default_factory=lambda: [0])
    overrides: dict[str, Any] = Field(default_factory=dict)  # dotted keys, --config merged in
    method: str = "srs"  # a stage-2 method (pipeline/methods/registry.py METHODS)
    embedding: str | None = None  # items/… kind or exact ref; None = ID-only
    embedding_mode: Literal["init", "frozen_adapter"] = "init"
    user_embedding: str | None = None  # users/… kind (LLM-ESR's neighbours)
    store_root: str = "store"
    data_dir: str = "data"
    runs_dir: str = "runs"
    resume: bool = False
    refresh: bool = False  # train again instead of reusing a cached run
    # Filled by `checked()`: backbone -> its resolved config (seed not yet applied), and
    # the prepared dataset's folder (preparing is how a dataset file is validated).
    configs: dict[str, TrainConfig] = Field(default_factory=dict)
    dataset_path: str | None = None

    @property
    def is_checked(self) -> bool:
        return set(self.configs) == set(self.backbones) and self.dataset_path is not None

    def checked(self) -> TrainRequest:
        """Every check that needs no training, in order (InputError: one line); returns the
        request with its configs resolved (configs/srs/<backbone>.yaml, then `overrides`)."""
        from pipeline.config import backbone_names, load_train_config
        from pipeline.data.config import resolve_dataset
        from pipeline.methods.registry import METHODS, get_method

        unknown = [b for b in self.backbones if b not in backbone_names()]
        if unknown or not self.backbones:
            raise InputError(f"unknown backbone {', '.join(unknown) or '(none)'}; "
                             f"choose from {', '.join(backbone_names())}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) \
                or not all(0 <= s < 2**32 for s in self.seeds):
            raise InputError(f"seeds {self.seeds}: at least one, no repeats, each in 0..2**32-1")
        method = get_method(self.method)
        if method.needs_items and self.embedding is None:
            raise InputError(f"--method {self.method} needs --embeddings (an item kind, "
                             "e.g. items/semantic-smollm2)")
        if not method.uses_users and self.user_embedding is not None:
            users = ", ".join(m.name for m in METHODS.values() if m.uses_users)
            raise InputError(f"--user-embeddings is only used by --method {users}")
        data = resolve_dataset(self.dataset)
        self._check_kinds(data.dataset_name)
        configs = {b: load_train_config(b, self.overrides, method=self.method)
                   for b in self.backbones}
        if self.method == "llmesr":
            configs = {b: resolve_llmesr(c, self.store_root, data.dataset_name)
                       for b, c in configs.items()}
        if self.method == "llmesr" and self.user_embedding is None and any(
                c.llmesr.distill_weight > 0 for c in configs.values() if c.backbone != "pop"):
            raise InputError("--method llmesr needs --user-embeddings (a user kind, e.g. "
                             "users/semantic-smollm2), or --set llmesr.distill_weight=0")
        if self.method != "srs" and any(c.nproc > 1 for c in configs.values()
                                        if c.backbone != "pop"):
            raise InputError(f"--nproc > 1 trains --method srs only (pipeline/distributed.py); "
                             f"--method {self.method} runs in one process: --nproc 1")
        from pipeline.data.prepare import prepare_dataset
        from pipeline.split import check_negatives

        ds = prepare_dataset(data, Path(self.data_dir))  # a bad file: one line, nothing kept
        if self.embedding is not None:  # it fits the prepared dataset (fingerprint, ids, width)
            self._check_item_table(ds, configs)
        check_negatives(ds, [c.n_negatives for c in configs.values()])
        configs = {b: _resolve_loss(c, ds.n_items) for b, c in configs.items()}
        for cfg in configs.values():
            check_step_memory(cfg, ds.n_items)
        return self.model_copy(update={"configs": configs, "dataset_path": str(ds.path)})

    def _check_kinds(self, dataset_name: str) -> None:
        from embeddings_store import EmbeddingStore

        for flag, ref, entity in (("--embeddings", self.embedding, "items/"),
                                  ("--user-embeddings", self.user_embedding, "users/")):
            if ref is not None:
                found = EmbeddingStore(self.store_root).resolve(ref, dataset=dataset_name)
                if not found.kind.startswith(entity):
                    raise InputError(f"{flag} {ref}: a {entity}… kind is needed, not {found.kind}")

    def _check_item_table(self, ds, configs: dict[str, TrainConfig]) -> None:
        from embeddings_store import EmbeddingStore
        from pipeline.preflight import check_item_embedding

        init = self.method == "srs" and self.embedding_mode == "init"
        dims = [c.model.dim for c in configs.values() if c.backbone != "pop"]
        check_item_embedding(ds, EmbeddingStore(self.store_root), self.embedding,
                             max(dims) if init and dims else None)


def resolve_llmesr(cfg: TrainConfig, store_root: str, dataset_name: str) -> TrainConfig:
    """An LLM-ESR config as it will train: llmesr.id_from (stacking: the ID view's initial
    table) pinned to its exact version, so the config hash and the cached run name the table
    it started from; llmesr.rasd=auto is "on" when there is no distillation to switch off
    (one run, the same folder as the plain no-RASD run)."""
    esr = cfg.llmesr
    if esr.rasd == "auto" and esr.distill_weight == 0:
        esr = esr.model_copy(update={"rasd": "on"})
    if esr.id_from is not None:
        from embeddings_store import EmbeddingStore

        found = EmbeddingStore(store_root).resolve(esr.id_from, dataset=dataset_name)
        if not found.kind.startswith("items/"):
            raise InputError(f"llmesr.id_from {esr.id_from}: an items/… kind is needed, "
                             f"not {found.kind}")
        esr = esr.model_copy(update={"id_from": f"{found.kind}@{found.version}"})
    return cfg.model_copy(update={"llmesr": esr})


def _resolve_loss(cfg: TrainConfig, n_items: int) -> TrainConfig:
    """model.loss=auto becomes the loss it stands for on this catalogue (models.srs.base)."""
    from models.srs.base import resolve_loss

    return cfg.model_copy(update={"model": resolve_loss(cfg.model, n_items)})


def check_step_memory(cfg: TrainConfig, n_items: int, available: int | None = None) -> None:
    """Refuse, in one line, a loss whose per-step tensors would not fit in the memory this
    machine has free (instead of swapping or being killed an epoch in)."""
    import psutil

    from models.srs.base import loss_step_bytes

    if cfg.backbone == "pop":
        return
    need = loss_step_bytes(cfg.model, cfg.batch_size, n_items)
    free = psutil.virtual_memory().available if available is None else available
    if need > 0.8 * free:
        sampled = loss_step_bytes(cfg.model.model_copy(update={"loss": "sampled"}),
                                  cfg.batch_size, n_items)
        raise InputError(
            f"{cfg.backbone}: the {cfg.model.loss} loss needs ~{need / 2**30:.1f} GiB per step "
            f"(batch_size {cfg.batch_size} × max_len {cfg.model.max_len} × {n_items} items), "
            f"more than 80% of the {free / 2**30:.1f} GiB free; use --set model.loss=sampled "
            f"(~{sampled / 2**20:.0f} MiB with model.negatives={cfg.model.negatives}) or a "
            "smaller batch_size")
