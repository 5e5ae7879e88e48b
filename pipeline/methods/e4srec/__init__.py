"""E4SRec (METHODS.md §2): an LLM over projected SASRec ID embeddings scores every item.

config (E4SRecConfig, configs/e4srec.yaml), samples (training pairs), schedule (cosine +
budget), train (the loop), run (store in, head out). No Prefect here.
"""

from __future__ import annotations

from pipeline.methods.e4srec.config import E4SRecConfig, PromptTemplate, load_e4srec_config

__all__ = ["E4SRecConfig", "PromptTemplate", "load_e4srec_config"]
