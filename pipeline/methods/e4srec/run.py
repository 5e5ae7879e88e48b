"""E4SRec end to end: read `items/sasrec-id`, load the LLM, train, evaluate, export the head.

The ID table comes from the store (never retrained here); the item head's rows for items
1..N are written back as `items/e4srec-head`, with the LoRA adapter's hash, the config and
the run's metrics in the manifest.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from embeddings_store import EmbeddingStore, ManifestInput, Parent, Producer, StoreError, VersionRef
from models.e4srec import E4SRec
from pipeline import checkpoint
from pipeline.data.dataset import Dataset
from pipeline.errors import InputError
from pipeline.evaluate import pick
from pipeline.llm import LLMSpec, LoadedModel, load_model, save_adapter
from pipeline.llm.hardware import bf16_is_fast
from pipeline.methods.e4srec.config import E4SRecConfig, PromptTemplate
from pipeline.methods.e4srec.train import E4SRecResult, train_e4srec
from pipeline.split import leave_one_out

ID_KIND = "items/sasrec-id"
HEAD_KIND = "items/e4srec-head"


def missing_table(dataset: str) -> InputError:
    return InputError(f"no {ID_KIND} for dataset {dataset} in the store: run "
                      f"`llm4srs embed sasrec-id --dataset {dataset}` first")


def resolve_id_table(store: EmbeddingStore, dataset: str, ref: str = ID_KIND) -> VersionRef:
    """The exact store version of the pre-trained ID table; a one-line hint when it is absent."""
    try:
        return store.resolve(ref, dataset=dataset)
    except StoreError:
        if ref == ID_KIND:
            raise missing_table(dataset) from None
        raise


def load_id_table(dataset: Dataset, store: EmbeddingStore, ref: str | VersionRef = ID_KIND
                  ) -> tuple[VersionRef, torch.Tensor]:
    """(version, [N+1, d] float32 table, row 0 = zero padding) for `dataset`'s catalogue."""
    version = ref if isinstance(ref, VersionRef) else resolve_id_table(store, dataset.name, ref)
    manifest = store.manifest(version)
    if manifest.dataset.fingerprint != dataset.fingerprint:
        raise InputError(f"{version} was made from dataset fingerprint {manifest.dataset.fingerprint}, "
                         f"not {dataset.fingerprint}: run `llm4srs embed sasrec-id --dataset "
                         f"{dataset.name}` again")
    ids, vectors = store.read(version)
    if not np.array_equal(np.sort(ids), np.arange(1, dataset.n_items + 1)):
        raise InputError(f"{version}: ids do not cover items 1..{dataset.n_items}")
    rows = np.asarray(vectors, dtype=np.float32)[np.argsort(ids)]  # [N, d] in id order
    table = np.concatenate([np.zeros((1, rows.shape[1]), np.float32), rows])
    return version, torch.from_numpy(table)


def template_ids(tokenizer: Any, prompt: PromptTemplate) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids of the prefix [P] and suffix [S], without special tokens (as the code does)."""
    pre = tokenizer(prompt.prefix, add_special_tokens=False)["input_ids"]
    suf = tokenizer(prompt.suffix, add_special_tokens=False)["input_ids"]
    if not suf:
        raise InputError("the E4SRec prompt suffix must have at least one token: its last "
                         "token's hidden state scores the items")
    return torch.tensor(pre, dtype=torch.long), torch.tensor(suf, dtype=torch.long)


def build_e4srec(loaded: LoadedModel, table: torch.Tensor, cfg: E4SRecConfig) -> E4SRec:
    prefix, suffix = template_ids(loaded.tokenizer, cfg.prompt)
    return E4SRec(loaded.model, table, prefix, suffix, cfg.model)


def use_bf16(cfg: E4SRecConfig, device: torch.device) -> bool:
    return bf16_is_fast(device) if cfg.bf16 is None else cfg.bf16


def run_e4srec(dataset: Dataset, cfg: E4SRecConfig, llm_spec: LLMSpec, store: EmbeddingStore,
               run_dir: Path, id_ref: str | VersionRef = ID_KIND, resume: bool = False,
               progress: bool = True, cache_dir: Path | None = None,
               export: bool = True) -> dict:
    """Train and evaluate E4SRec; returns {result, model, adapter_hash, id_ref, head_ref}."""
    split = leave_one_out(dataset, neg_seed=cfg.neg_seed)
    version, table = load_id_table(dataset, store, id_ref)
    if cfg.device != "auto":
        llm_spec = llm_spec.model_copy(update={"device": cfg.device})
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    loaded = load_model(llm_spec, cache_dir=cache_dir)
    checkpoint.seed_everything(cfg.seed)  # the projection, head and LoRA initialisations
    model = build_e4srec(loaded, table, cfg)
    result = train_e4srec(model, split, cfg, run_dir, resume=resume, progress=progress,
                          bf16=use_bf16(cfg, loaded.device))
    adapter_hash = save_adapter(model.llm, run_dir / "adapter")  # the selected weights
    info = {"result": result, "model": loaded.describe(), "adapter_hash": adapter_hash,
            "id_ref": str(version), "head_ref": None}
    if export:
        info["head_ref"] = str(write_head(dataset, model, cfg, store, version, info))
    (run_dir / "run.json").write_text(json.dumps(
        {k: asdict(v) if isinstance(v, E4SRecResult) else v for k, v in info.items()},
        indent=1, default=str))
    return info


def head_metrics(result: E4SRecResult, cfg: E4SRecConfig) -> dict:
    """The headline figures and the budget the run had and used, for manifests and reports."""
    out = {"valid_full_ndcg@10": pick(result.valid_rows) if result.valid_rows else None,
           "test_full_ndcg@10": pick(result.test_rows),
           "test_full_ndcg@10_tail_item": pick(result.test_rows, "full", "tail_item"),
           "test_s100_ndcg@10": pick(result.test_rows, "s100"),
           "max_minutes": cfg.max_minutes, "max_samples_per_epoch": cfg.max_samples_per_epoch}
    keys = ("best_step", "steps_run", "planned_steps", "epochs_run", "samples_seen",
            "train_seconds", "total_seconds", "stopped_by_budget")
    return out | {k: getattr(result, k) for k in keys}


def write_head(dataset: Dataset, model: E4SRec, cfg: E4SRecConfig, store: EmbeddingStore,
               id_version: VersionRef, info: dict) -> VersionRef:
    """The item head's rows for items 1..N -> `items/e4srec-head` (inner-product scores)."""
    vectors = model.head_weight()[1:].detach().float().cpu().numpy()  # [N, H]
    ids = np.arange(1, model.n_items + 1, dtype=np.int64)
    described = info["model"]
    manifest = ManifestInput(
        dataset_fingerprint=dataset.fingerprint,
        producer=Producer(generator="e4srec", model_id=described["model_id"],
                          model_file_hash=described["weights_sha256"],
                          adapter_hash=info["adapter_hash"],
                          prompt_template=cfg.prompt.model_dump_json(),
                          config={"e4srec": cfg.model_dump(mode="json"), "model": described}),
        metric="ip",
        parents=[Parent(kind=id_version.kind, version=id_version.version,
                        dataset=id_version.dataset)],
        metrics=head_metrics(info["result"], cfg),
    )
    return store.write(dataset.name, HEAD_KIND, ids, vectors, manifest, expected_ids=ids)
