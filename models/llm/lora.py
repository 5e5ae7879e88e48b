"""LoRA adapters through peft: wrap a model, count what trains.

The base weights stay frozen; only the adapter matrices train. Saving and hashing an
adapter (files) lives in pipeline/llm/adapters.py.
"""

from __future__ import annotations

from typing import Literal

from peft import LoraConfig, PeftModel, TaskType, get_peft_model
from torch import nn

# The attention and MLP projections of LLaMA-like models (LLMEmb's SCFT targets).
LLAMA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def add_lora(model: nn.Module, r: int = 8, alpha: float = 32, dropout: float = 0.1,
             targets: list[str] | Literal["all-linear"] = "all-linear",
             task_type: str | None = None) -> PeftModel:
    """Wrap `model` with LoRA on `targets` ("all-linear": every linear layer but the output
    head, peft's rule). task_type defaults to CAUSAL_LM for *ForCausalLM models and to
    FEATURE_EXTRACTION otherwise (embedding models)."""
    if task_type is None:
        causal = type(model).__name__.endswith("ForCausalLM")
        task_type = TaskType.CAUSAL_LM if causal else TaskType.FEATURE_EXTRACTION
    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout,
                     target_modules=targets if targets == "all-linear" else list(targets),
                     task_type=task_type)
    return get_peft_model(model, cfg)


def trainable_parameter_count(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())
