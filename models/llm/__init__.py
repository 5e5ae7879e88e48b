"""LLM backbones: load (HF id, folder, GGUF, sentence-transformers), encode, add LoRA.

torch/transformers only: nothing here knows of Prefect, Parquet or the store.

Names are imported on first use (PEP 562), so `from models.llm.errors import …` or
`models.llm.spec` cost no torch import: the CLI answers `--help` and refuses bad versions
or input before the heavy libraries load.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_HOME = {
    "EncodeStats": "encode", "TextEncoder": "encode", "pool": "encode",
    "ModelLoadError": "errors",
    "LoadedModel": "loading", "check_source": "loading", "default_cache_dir": "loading",
    "load_model": "loading",
    "adapter_hash": "lora", "add_lora": "lora", "save_adapter": "lora",
    "trainable_parameter_count": "lora",
    "ResolvedSource": "sources", "resolve_source": "sources",
    "LLMSpec": "spec",
}
__all__ = [
    "EncodeStats", "LLMSpec", "LoadedModel", "ModelLoadError", "ResolvedSource", "TextEncoder",
    "adapter_hash", "add_lora", "check_source", "default_cache_dir", "load_model", "pool",
    "resolve_source", "save_adapter", "trainable_parameter_count",
]

if TYPE_CHECKING:
    from models.llm.encode import EncodeStats, TextEncoder, pool
    from models.llm.errors import ModelLoadError
    from models.llm.loading import LoadedModel, check_source, default_cache_dir, load_model
    from models.llm.lora import adapter_hash, add_lora, save_adapter, trainable_parameter_count
    from models.llm.sources import ResolvedSource, resolve_source
    from models.llm.spec import LLMSpec


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'models.llm' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"models.llm.{_HOME[name]}"), name)
    globals()[name] = value
    return value
