"""E4SRec's run configuration: one frozen, typed object (configs/e4srec.yaml + overrides)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from models.e4srec import E4SRecModelConfig
from pipeline.evaluate import EvalConfig
from pipeline.presets import CONFIG_DIR, build_config, read_mapping

PRESET = CONFIG_DIR / "e4srec.yaml"


class PromptTemplate(BaseModel):
    """Alpaca-style instruction around the item embeddings (our wording, METHODS.md §2.3).

    The prompt is [prefix tokens ; projected item embeddings ; suffix tokens], tokenised
    without special tokens. Every template token is paid for in every forward pass, so the
    default is short.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    prefix: str = ("Recommend an item.\n### Instruction:\nThe input lists a user's items, "
                   "oldest first. Predict their next item.\n### Input:\n")
    suffix: str = "\n### Response:\n"


class E4SRecConfig(BaseModel):
    """Everything that determines one E4SRec run besides the dataset, the LLM and the
    pre-trained ID table (those three are named in the run's cache key and manifest)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    model: E4SRecModelConfig = E4SRecModelConfig()
    prompt: PromptTemplate = PromptTemplate()
    eval: EvalConfig = EvalConfig(batch_size=64)
    seed: int = 0
    # Optimiser: AdamW, cosine decay after a linear warm-up (the paper: 3e-4, warm-up 100).
    lr: float = Field(3e-4, gt=0)  # LoRA
    head_lr: float | None = Field(None, gt=0)  # input projection + item head; None = lr
    weight_decay: float = Field(0.0, ge=0)
    warmup_steps: int = Field(100, ge=0)
    batch_size: int = Field(16, ge=1)
    grad_clip: float | None = Field(1.0, gt=0)
    epochs: int = Field(3, ge=1)
    # Samples: (a prefix of a user's training sequence -> the item after it), for the last
    # `targets_per_user` positions of each user (the code's 50) with at least `min_history`
    # items before them. Each epoch draws at most `max_samples_per_epoch` of them (seeded).
    targets_per_user: int = Field(50, ge=1)
    min_history: int = Field(1, ge=0)
    max_samples_per_epoch: int | None = Field(None, ge=1)
    # Leave the history's items out of the training softmax too (as the masked evaluation
    # does; the project's SASRec does the same). Off = the paper's plain softmax.
    mask_seen: bool = False
    # Model selection on validation full NDCG@10: `validations` evaluation points spread
    # evenly over the planned steps (the last at the end), on at most `valid_users` users
    # (a fixed seeded subset; None = all). Never on test.
    validations: int = Field(2, ge=1)
    valid_users: int | None = Field(None, ge=1)
    # Wall-clock budget (minutes) for training + validations + the final test evaluation.
    # After `calibrate_steps` steps the planned steps shrink to what fits (the cosine
    # schedule follows the new plan); the budget is also a hard stop. None = no budget.
    max_minutes: float | None = Field(None, gt=0)
    calibrate_steps: int = Field(5, ge=2)
    save_every_steps: int = Field(50, ge=1)  # checkpoint cadence (and at every epoch end)
    threads: int | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    bf16: bool | None = None  # autocast; None = where pipeline.llm.hardware says it is fast
    neg_seed: int = 0

    def config_hash(self) -> str:
        """Hash of everything but the seed and the machine knobs."""
        payload = self.model_dump(mode="json", exclude={"seed", "threads", "device", "bf16"})
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:10]


def load_e4srec_config(overrides: dict | None = None, preset: Path | None = None) -> E4SRecConfig:
    """configs/e4srec.yaml (or `preset`), then overrides with dotted keys (`model.lora_r=8`)."""
    path = preset or PRESET
    data = read_mapping(path) if preset is not None or path.is_file() else {}
    return build_config(E4SRecConfig, data, overrides, f"e4srec config {path.name}")
