"""LoRA adapters through peft: add, count, save and hash.

The base weights stay frozen; only the adapter matrices train, and an adapter saved on its
own (a few MB) plus the base model's hash identifies a tuned model in a manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
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


def adapter_hash(folder: Path) -> str:
    """sha256 over a saved adapter's weights and its config, with the machine-specific base
    model path left out of the config so the same adapter hashes alike everywhere."""
    folder = Path(folder)
    h = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if not path.is_file():
            continue
        if path.name == "adapter_config.json":
            cfg = json.loads(path.read_text())
            for key in ("base_model_name_or_path", "revision"):
                cfg.pop(key, None)
            data = json.dumps(cfg, sort_keys=True).encode()
        elif path.suffix in (".safetensors", ".bin"):
            data = path.read_bytes()
        else:
            continue  # README and the like do not change the adapter
        h.update(f"{path.name}\0{hashlib.sha256(data).hexdigest()}\n".encode())
    return h.hexdigest()


def save_adapter(model: PeftModel, folder: Path) -> str:
    """Save only the adapter into `folder` (written aside, then renamed); returns its hash."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        model.save_pretrained(tmp)
        if folder.exists():
            shutil.rmtree(folder)
        os.rename(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return adapter_hash(folder)
