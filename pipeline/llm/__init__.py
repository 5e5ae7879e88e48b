"""LLM file handling: model sources (packaged, HF id, folder, GGUF), the GGUF conversion
cache, weight hashes, adapter files, hardware probing, and the text encoder over a loaded
model. The torch-only parts (pooling, LoRA wrapping) are in models/llm.

Names are imported on first use (PEP 562), so `from pipeline.llm.errors import …` or
`pipeline.llm.spec` cost no torch import: the CLI answers `--help` and refuses bad versions
or input before the heavy libraries load.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_HOME = {
    "EncodeStats": "encode", "TextEncoder": "encode",
    "ModelLoadError": "errors",
    "LoadedModel": "loading", "check_source": "loading", "default_cache_dir": "loading",
    "load_model": "loading",
    "adapter_hash": "adapters", "save_adapter": "adapters",
    "ResolvedSource": "sources", "resolve_source": "sources",
    "LLMSpec": "spec",
    "bf16_is_fast": "hardware", "cpu_has_native_bf16": "hardware",
}
__all__ = [
    "EncodeStats", "LLMSpec", "LoadedModel", "ModelLoadError", "ResolvedSource", "TextEncoder",
    "adapter_hash", "bf16_is_fast", "check_source", "cpu_has_native_bf16", "default_cache_dir",
    "load_model", "resolve_source", "save_adapter",
]

if TYPE_CHECKING:
    from pipeline.llm.adapters import adapter_hash, save_adapter
    from pipeline.llm.encode import EncodeStats, TextEncoder
    from pipeline.llm.errors import ModelLoadError
    from pipeline.llm.hardware import bf16_is_fast, cpu_has_native_bf16
    from pipeline.llm.loading import LoadedModel, check_source, default_cache_dir, load_model
    from pipeline.llm.sources import ResolvedSource, resolve_source
    from pipeline.llm.spec import LLMSpec


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'pipeline.llm' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"pipeline.llm.{_HOME[name]}"), name)
    globals()[name] = value
    return value
