"""LLM backbones: load (HF id, folder, GGUF, sentence-transformers), encode, add LoRA.

torch/transformers only: nothing here knows of Prefect, Parquet or the store.
"""

from __future__ import annotations

from models.llm.encode import EncodeStats, TextEncoder, pool
from models.llm.errors import ModelLoadError
from models.llm.loading import LoadedModel, check_source, default_cache_dir, load_model
from models.llm.lora import adapter_hash, add_lora, save_adapter, trainable_parameter_count
from models.llm.sources import ResolvedSource, resolve_source
from models.llm.spec import LLMSpec

__all__ = [
    "EncodeStats", "LLMSpec", "LoadedModel", "ModelLoadError", "ResolvedSource", "TextEncoder",
    "adapter_hash", "add_lora", "check_source", "default_cache_dir", "load_model", "pool",
    "resolve_source", "save_adapter", "trainable_parameter_count",
]
