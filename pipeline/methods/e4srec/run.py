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
from pipeline.store_io import read_catalogue

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
    version, rows = read_catalogue(dataset, store, version)  # [N, d] in id order
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


# ---- one seed as a flow task runs it -----------------------------------------------------


def seed_config(overrides: dict, seed: int) -> E4SRecConfig:
    from pipeline.methods.e4srec.config import load_e4srec_config

    return load_e4srec_config(overrides).model_copy(update={"seed": seed})


def seed_key(dataset_path: str, llm: dict, overrides: dict, seed: int, id_ref: str,
             store_root: str) -> str:
    """Content key: fingerprint + LLM spec + resolved config + seed + exact ID table."""
    from pipeline.data.dataset import read_fingerprint
    from pipeline.runs import cache_key

    spec, cfg = LLMSpec(**llm), seed_config(overrides, seed)
    fp = read_fingerprint(Path(dataset_path))
    return f"e4srec-{fp}-{cache_key(spec, cfg.config_hash(), id_ref)}-s{seed}-{store_root}"


def train_seed(dataset_path: str, id_ref: str, llm: dict, overrides: dict, seed: int,
               runs_dir: str, store_root: str, resume: bool = False) -> dict:
    """Train, evaluate and export one seed; {rows: test result rows, info: figures, summary}."""
    from pipeline.runs import cache_key, result_rows, run_folder

    ds = Dataset.load(Path(dataset_path))
    spec, cfg = LLMSpec(**llm), seed_config(overrides, seed)
    run_dir = run_folder(runs_dir, ds.name, "e4srec", spec.short_name,
                         cache_key(spec, cfg.config_hash(), id_ref), f"s{seed}")
    info = run_e4srec(ds, cfg, spec, EmbeddingStore(store_root), run_dir, id_ref=id_ref,
                      resume=resume)
    result = info["result"]
    rows = result_rows(ds, result.test_rows, method="e4srec", backbone=spec.short_name,
                       embedding=id_ref, user_embedding=None, seed=seed,
                       train_seconds=result.train_seconds, best_epoch=result.best_epoch,
                       config_hash=cfg.config_hash(), run=f"{ds.name}/{run_dir.name}")
    figures = head_metrics(result, cfg) | {"head_ref": info["head_ref"], "run_dir": str(run_dir),
                                           "adapter_hash": info["adapter_hash"]}
    summary = (f"e4srec seed {seed}: {result.steps_run} steps (best {result.best_step}), "
               f"{result.total_seconds:.1f} s, budget stop {result.stopped_by_budget}, "
               f"head {info['head_ref']}")
    return {"rows": rows, "info": figures, "summary": summary}


def report_markdown(rows: list[dict], infos: list[tuple[int, dict]], name: str) -> str:
    """The results table plus one line per seed of what the budget allowed."""
    from pipeline.results import markdown

    lines = [markdown(rows, f"E4SRec on {name}"), "", "| seed | steps (planned) | samples | "
             "budget (min) | used (min) | budget stop | head |", "|---|---|---|---|---|---|---|"]
    for seed, i in infos:
        budget = "—" if i["max_minutes"] is None else f"{i['max_minutes']:g}"
        lines.append(f"| {seed} | {i['steps_run']} ({i['planned_steps']}) | {i['samples_seen']} | "
                     f"{budget} | {i['total_seconds'] / 60:.1f} | {i['stopped_by_budget']} | "
                     f"`{i['head_ref']}` |")
    return "\n".join(lines)
