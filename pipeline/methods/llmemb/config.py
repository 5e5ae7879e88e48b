"""LLMEmb's two configs (SCFT, RAT): pydantic only, so the registry, the CLI and the
augmentation read them without loading torch or sentence-transformers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from models.llm.lora import LLAMA_TARGETS
from models.srs.registry import check_backbone
from pipeline.prompts import PromptConfig

if TYPE_CHECKING:
    from pipeline.config import TrainConfig


class ScftConfig(BaseModel):
    """One SCFT run. CPU defaults are small: the paper's 4000 steps × 64 items on LLaMA-7B
    are out of reach, and max_steps is recorded in the manifest as the cap it is."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    prompt: PromptConfig = PromptConfig()
    drop_ratio: float = Field(0.4, ge=0, lt=1)  # ⌊ratio·n⌋ attributes dropped per view
    max_steps: int = Field(60, ge=1)
    batch_size: int = Field(16, ge=2)  # items per step; the forward pass sees 2× this
    lr: float = Field(2e-4, gt=0)
    max_length: int = Field(64, ge=8)  # tokens per view
    lora_r: int = Field(8, ge=1)
    lora_alpha: float = 32
    lora_dropout: float = Field(0.1, ge=0, lt=1)
    lora_targets: tuple[str, ...] = tuple(LLAMA_TARGETS)
    loss: str = Field("soft", pattern="^(soft|infonce)$")
    tau: float = Field(3.0, gt=0)
    learnable_tau: bool = True
    normalize: bool = False  # the paper's un-normalised dot products
    bf16: bool = True  # autocast where the device supports it (CPUs with AVX512-BF16/AMX)
    seed: int = 0
    heldout_fraction: float = Field(0.1, ge=0, lt=1)  # items never trained on
    heldout_eval_max: int = Field(256, ge=2)  # held-out items used for recall@1
    save_steps: int = Field(20, ge=1)
    encode_batch_size: int = Field(32, ge=1)


class RatConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    backbone: Annotated[str, AfterValidator(check_backbone)] = "sasrec"
    srs_overrides: dict = {}  # dotted keys over configs/srs/<backbone>.yaml
    pca_dim: int | None = None  # None: min(H, N, 256)
    alpha: float = Field(0.01, ge=0)  # 0 = the "w/o alignment" ablation
    tau: float = Field(2.0, gt=0)
    align_items: int = Field(256, ge=2)  # ids aligned per step when no batch is given
    align_seed: int = 0

    def train_config(self) -> TrainConfig:
        from pipeline.config import load_train_config

        return load_train_config(self.backbone, self.srs_overrides)
