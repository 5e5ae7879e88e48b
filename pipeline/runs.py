"""Runs: what a request resolves to, where its files go, what its results look like.

The one home of run-folder naming, cache keys, result-row schema and method dispatch, so
the flows only wire tasks (DESIGN.md, "Orchestration").

- `cache_key(*parts)`: the one content digest behind every task cache key and run folder.
- Stage 1: `run_generator` runs one registered generator (pipeline/methods/registry.py).
- Stage 2: `train_one` trains one (backbone, seed) with the requested method and returns
  its result rows (`RESULT_COLUMNS`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pipeline.data.dataset import Dataset, read_fingerprint


def cache_key(*parts: Any) -> str:
    """A short, stable digest of JSON-able parts (pydantic models by their JSON dump)."""
    def plain(x: Any) -> Any:
        return x.model_dump(mode="json") if hasattr(x, "model_dump") else x

    payload = json.dumps([plain(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def run_folder(runs_dir: str | Path, dataset: str, *name: str) -> Path:
    """`runs/<dataset>/<name parts joined by '-'>`: every run's checkpoints live here."""
    return Path(runs_dir) / dataset / "-".join(name)


# ---- stage 1 -------------------------------------------------------------------------------


def _generator_inputs(name: str, overrides: dict, llm: dict | None):
    from pipeline.llm.spec import LLMSpec
    from pipeline.methods.registry import get_generator

    gen = get_generator(name)
    spec = LLMSpec(**(llm or {})) if gen.uses_llm else None
    return gen, gen.load_config(overrides, spec), spec


def generator_config(name: str, overrides: dict, llm: dict | None) -> dict:
    """A generator's resolved config as JSON (what its writer and its manifest see)."""
    return _generator_inputs(name, overrides, llm)[1].model_dump(mode="json")


def generator_key(name: str, dataset_path: str, overrides: dict, llm: dict | None,
                  upstream: dict[str, str], store_root: str) -> str:
    """Content key of one generator run: dataset fingerprint + resolved config + LLM +
    exact upstream versions (+ the store it writes to)."""
    _, cfg, spec = _generator_inputs(name, overrides, llm)
    fp = read_fingerprint(Path(dataset_path))
    return f"gen-{name}-{fp}-{cache_key(cfg, spec, upstream)}-{Path(store_root).resolve()}"


def run_generator(name: str, dataset_path: str, overrides: dict, llm: dict | None,
                  upstream: dict[str, str], store_root: str, runs_dir: str,
                  resume: bool = True) -> dict[str, str]:
    """Run one generator; {kind: exact version ref} of what it wrote."""
    from embeddings_store import EmbeddingStore
    from pipeline.methods.registry import GenContext

    gen, cfg, spec = _generator_inputs(name, overrides, llm)
    ds = Dataset.load(Path(dataset_path))
    ctx = GenContext(dataset=ds, store=EmbeddingStore(store_root),
                     run_dir=run_folder(runs_dir, ds.name, name, cache_key(cfg, spec, upstream)),
                     config=cfg, llm=spec, upstream=dict(upstream), resume=resume)
    return gen.write(ctx)


def generator_report(name: str, store_root: str, refs: dict[str, str]) -> str | None:
    """A generator's own markdown about what it wrote (e.g. TSLRec's held-out table)."""
    from embeddings_store import EmbeddingStore
    from pipeline.methods.registry import get_generator

    report = getattr(get_generator(name), "report", None)
    if report is None:
        return None
    return "\n\n".join(report(EmbeddingStore(store_root), ref) for ref in refs.values())


def store_versions_markdown(dataset_name: str, refs: dict[str, str]) -> str:
    lines = [f"## Embeddings for {dataset_name}", "", "| kind | version |", "|---|---|"]
    return "\n".join(lines + [f"| `{kind}` | `{ref}` |" for kind, ref in refs.items()])
