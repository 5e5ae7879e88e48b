"""LLM pieces that are torch modules or pure tensor math: pooling, LoRA wrapping.

Loading weights (HF id, folder, GGUF), caches, hashes and adapter files live in
pipeline/llm/: models/ never touches files (DESIGN.md, "Who may import whom").
"""

from __future__ import annotations

from models.llm.lora import LLAMA_TARGETS, add_lora, trainable_parameter_count
from models.llm.pooling import pool

__all__ = ["LLAMA_TARGETS", "add_lora", "pool", "trainable_parameter_count"]
