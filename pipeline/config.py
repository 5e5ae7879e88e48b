"""Typed, frozen run configuration with YAML presets (configs/srs/*.yaml)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from models.srs import BACKBONES, SRSConfig
from models.srs.base import SAMPLED_LOSSES
from models.srs.llmesr import LLMESRConfig
from pipeline.errors import InputError
from pipeline.evaluate import EvalConfig
from pipeline.presets import CONFIG_DIR, build_config, read_mapping

# Baselines trained by no backbone (pipeline/train.py scores them directly).
BASELINES = ("pop",)


def backbone_names() -> list[str]:
    """Every name `--backbone` takes: the registered backbones, then the baselines."""
    return [*BACKBONES, *BASELINES]


def _check_train_backbone(name: str) -> str:
    if name not in backbone_names():
        raise ValueError(f"unknown backbone {name!r}; choose from {', '.join(backbone_names())}")
    return name


class TrainConfig(BaseModel):
    """Everything that determines one training run (besides the dataset)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    backbone: Annotated[str, AfterValidator(_check_train_backbone)] = "sasrec"
    model: SRSConfig = SRSConfig()
    eval: EvalConfig = EvalConfig()
    seed: int = 0
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(128, ge=1)
    epochs: int = Field(200, ge=1)
    patience: int = Field(10, ge=1)  # epochs without a better validation NDCG@10
    # Halve the learning rate after this many evaluations without improvement (0 = never).
    lr_decay_patience: int = Field(0, ge=0)
    lr_decay_factor: float = Field(0.5, gt=0, lt=1)
    eval_every: int = Field(1, ge=1)
    threads: int | None = None  # torch intra-op threads; None = torch's default
    # Training processes of one run (torch.distributed: gloo on CPU, NCCL on GPUs; pipeline/
    # distributed.py). The global batch stays batch_size, split between them.
    nproc: int = Field(1, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: CUDA when present, else CPU
    # bf16 autocast of the forward pass (fp32 weights and softmax): ~1.8× faster on CPUs with
    # AVX512-BF16/AMX and on GPUs, same quality on ML-100k. None = where it is fast.
    bf16: bool | None = None
    neg_seed: int = 0  # seed of the fixed sampled-ranking negatives (not the training seed)
    # Sampled-ranking negatives per user (protocol `s<n>`): items outside the user's whole
    # sequence, so a catalogue needs n_negatives + the longest history items.
    n_negatives: int = Field(100, ge=1)
    # LLM-ESR's switches (`--method llmesr`); ignored by the other methods.
    llmesr: LLMESRConfig = LLMESRConfig()

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.llmesr.teacher == "validation" and self.eval.user_sample is not None:
            raise ValueError("llmesr.teacher=validation needs every user validated; it cannot "
                             "run with eval.user_sample (use llmesr.teacher=cached)")
        return self

    def config_hash(self) -> str:
        """Hash of everything but the seed: runs that differ only by seed share it."""
        exclude: dict = {"seed": True, "threads": True, "nproc": True, "device": True, "bf16": True}
        if self.llmesr == LLMESRConfig():  # default: hashes of runs that predate it unchanged
            exclude["llmesr"] = True
        else:
            exclude["llmesr"] = _at_default(self.llmesr, ADDED_LATER["llmesr"])
            if self.llmesr.distill_weight == 0:  # no distillation: no teacher to tell apart
                exclude["llmesr"] |= {"teacher", "refresh_every"}
        if self.eval.user_sample is None:  # every user: the protocol runs always had
            exclude["eval"] = {"user_sample": True, "sample_seed": True}
        if self.n_negatives == 100:  # likewise the default protocol, s100
            exclude["n_negatives"] = True
        model = _at_default(self.model, ADDED_LATER["model"])
        if self.model.loss not in SAMPLED_LOSSES:  # and the sampled losses' settings
            model |= {"negatives", "sampler", "gbce_t"}
        if model:
            exclude["model"] = model
        payload = self.model_dump(mode="json", exclude=exclude)
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:10]


# Fields added after runs were cached, per section: left out of the config hash while at
# their defaults, so the runs that predate them keep their hashes (and their cached results).
ADDED_LATER = {"model": ("cloze_prefixes",),
               "llmesr": ("teacher", "refresh_every", "id_from", "rasd")}


def _at_default(section: BaseModel, fields: tuple[str, ...]) -> set[str]:
    return {f for f in fields if getattr(section, f) == type(section).model_fields[f].default}


METHOD_SECTION = "llmesr_overrides"  # a preset's settings for `--method llmesr` only


def load_train_config(backbone: str, overrides: dict | None = None,
                      preset: Path | None = None, method: str = "srs") -> TrainConfig:
    """configs/srs/<backbone>.yaml (or `preset`), then, for method "llmesr", the preset's
    `llmesr_overrides` section, then overrides (dotted keys allowed everywhere).

    The section holds what LLM-ESR on this backbone was tuned to apart from the ID-only
    backbone (e.g. a learning-rate schedule); other methods ignore it. An `overrides` dict
    may carry its own section (a `--config` YAML passed on as overrides): it is merged in.
    """
    path = preset or CONFIG_DIR / "srs" / f"{backbone}.yaml"
    data = read_mapping(path) if preset is not None or path.is_file() else {}
    overrides = dict(overrides or {})
    section: dict = {}
    for source, where in ((data, f"config {path.name}"), (overrides, "overrides")):
        part = source.pop(METHOD_SECTION, None) or {}
        if not isinstance(part, dict):
            raise InputError(f"{where}: {METHOD_SECTION} must be a mapping of settings, "
                             f"not {type(part).__name__}")
        section.update(part)
    data.setdefault("backbone", backbone)
    if backbone != "pop":
        data.setdefault("model", {}).setdefault("backbone", backbone)
    if method == "llmesr":
        overrides = {**section, **overrides}
    return build_config(TrainConfig, data, overrides, f"config {path.name}")
