"""TSLRec / P2Rec: user-level preference-reconstruction SFT, then per-item embeddings.

Established (METHODS.md §5.1): latent item categories from k-means over a pre-trained
SRS's item embeddings; one SFT example per *user* whose target is the normalised
histogram of categories over the user's sequence (O(M) examples instead of one per
interaction); the LLM reads the sequence with limited text; then every item is fed
through the tuned LLM and its state is the enhanced embedding (last-token pooling in the
LLMEmb repository's TSLRec baseline).

Our reconstruction (§5.2; no code is public), each a config field:
- k-means on the L2-normalised `items/sasrec-id` rows (K=16, seeded);
- histograms over `Split.train` only; 10 % of users held out to measure reconstruction;
- inputs: item titles (`text`) or `item_<id>` strings (`ids`, for catalogues without
  text), the most recent ≤ 50 items in ≤ 128 tokens, our own prompt wording;
- output: a K-way linear head on the last-token state, KL(p_u ‖ softmax(z)) (default), or
  the LM head's scores of K label tokens (`output="lm"`, the "generate it as text" variant
  reduced to its first token);
- LoRA r 8 / α 32 / dropout 0.1 on q/k/v/o/gate/up/down as in LLMEmb's TSLRec run, but
  on the top `lora_layers` layers only (CPU: backward then stops there; ~2.6× cheaper);
- augmentation prompt: the user prompt with a single item; last-token state, centred on
  the catalogue mean and L2-normalised (raw states are anisotropic).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from embeddings_store import EmbeddingStore, ManifestInput, Parent, Producer, VersionRef
from models.llm.lora import LLAMA_TARGETS
from models.tslrec import CategoryHead, VerbalizerHead
from pipeline import checkpoint
from pipeline.data.dataset import Dataset
from pipeline.errors import InputError
from pipeline.llm import LLMSpec, load_model, save_adapter
from pipeline.methods.semantic.encode import centre_normalise
from pipeline.methods.tslrec.data import (
    PromptTokens,
    TslrecPrompt,
    batch_schedule,
    category_histograms,
    category_names,
    instance_level_count,
    item_strings,
    latent_categories,
    reconstruction_metrics,
    split_users,
)
from pipeline.methods.tslrec.sft import encode_last, train_head_only, train_sft
from pipeline.split import Split
from pipeline.store_io import read_catalogue

KIND = "items/tslrec"
SASREC_KIND = "items/sasrec-id"


class TslrecConfig(BaseModel):
    """One TSLRec run. CPU defaults: the reference run's 4000 steps × 32 users on LLaMA-7B
    are out of reach; the caps here are recorded in the manifest as the caps they are."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    k: int = Field(16, ge=2)
    kmeans_seed: int = 0
    kmeans_niter: int = Field(25, ge=1)
    mode: Literal["auto", "text", "ids"] = "auto"  # auto: text when the items have any
    output: Literal["head", "lm"] = "head"
    prompt: TslrecPrompt = TslrecPrompt()
    max_steps: int = Field(80, ge=1)
    batch_size: int = Field(8, ge=1)  # users per step
    lr: float = Field(1e-3, gt=0)  # LoRA
    head_lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    lora_r: int = Field(8, ge=1)
    lora_alpha: float = 32
    lora_dropout: float = Field(0.1, ge=0, lt=1)
    lora_targets: tuple[str, ...] = tuple(LLAMA_TARGETS)
    lora_layers: int | None = Field(8, ge=1)  # LoRA on the top n layers; None = all
    head_dropout: float = Field(0.0, ge=0, lt=1)
    prior_init: bool = True  # head starts at the training users' mean histogram
    bf16: bool = True  # autocast where load_model chose bf16 weights (fast hardware only)
    seed: int = 0
    heldout_fraction: float = Field(0.1, gt=0, lt=1)
    heldout_max: int = Field(256, ge=1)  # held-out users actually scored (CPU cap)
    save_steps: int = Field(20, ge=1)
    encode_batch_size: int = Field(16, ge=1)


def resolve_mode(dataset: Dataset, cfg: TslrecConfig) -> Literal["text", "ids"]:
    if cfg.mode == "ids":
        return "ids"
    if dataset.text_columns:
        return "text"
    if cfg.mode == "text":
        raise InputError(f"dataset {dataset.name} has no text attributes; TSLRec's text mode "
                         "needs item titles (use mode ids, the limited-text input)")
    return "ids"


def add_tslrec_lora(model: torch.nn.Module, cfg: TslrecConfig):
    """peft LoRA on the bare transformer; with `lora_layers`, only its top layers."""
    from peft import LoraConfig, get_peft_model

    kwargs: dict = {}
    n = int(model.config.num_hidden_layers)
    if cfg.lora_layers is not None and cfg.lora_layers < n:
        kwargs = {"layers_to_transform": list(range(n - cfg.lora_layers, n)),
                  "layers_pattern": "layers"}
    torch.manual_seed(cfg.seed)  # LoRA's A matrices start random
    peft_model = get_peft_model(model, LoraConfig(
        r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
        target_modules=list(cfg.lora_targets), task_type="FEATURE_EXTRACTION", **kwargs))
    for p in peft_model.parameters():  # fp32 adapters on bf16 weights: Adam steps stay exact
        if p.requires_grad:
            p.data = p.data.float()
    return peft_model


def _verbalizer(loaded, k: int) -> VerbalizerHead:
    """The LM head's rows of the K label tokens (" A", " B", …), each one token."""
    tok, lm_head = loaded.tokenizer, loaded.model.get_output_embeddings()
    names = category_names(k)
    ids = [tok(f" {n}", add_special_tokens=False)["input_ids"] for n in names]
    bad = [n for n, i in zip(names, ids, strict=True) if len(i) != 1 or i[0] == tok.unk_token_id]
    if bad:
        raise InputError(f"output lm needs each category label to be one known token; "
                         f"{bad[:3]} are not in this tokenizer (use output head)")
    rows = torch.stack([lm_head.weight[i[0]] for i in ids])  # [K, H]
    bias = None if lm_head.bias is None else lm_head.bias[[i[0] for i in ids]]
    return VerbalizerHead(rows, bias)


def _probs(head: torch.nn.Module, features: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(head(torch.from_numpy(features)), dim=-1).numpy()  # [M, K]


def run_tslrec(dataset: Dataset, split: Split, cfg: TslrecConfig, llm_spec: LLMSpec,
               store: EmbeddingStore, run_dir: Path, sasrec_ref: str | VersionRef = SASREC_KIND,
               resume: bool = False, cache_dir: Path | None = None,
               progress: bool = False) -> tuple[np.ndarray, np.ndarray, dict]:
    """TSLRec end to end → (item ids [N], centred unit vectors [N, H] float32, info)."""
    t_start = time.perf_counter()
    seconds: dict[str, float] = {}
    mode = resolve_mode(dataset, cfg)
    sasrec_v, table = read_catalogue(dataset, store, sasrec_ref)
    t = time.perf_counter()
    cats = latent_categories(table, cfg.k, cfg.kmeans_seed, cfg.kmeans_niter)
    seconds["kmeans"] = time.perf_counter() - t
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "categories.json").write_text(json.dumps(
        {**cats.describe(), "sasrec_id": str(sasrec_v), "niter": cfg.kmeans_niter,
         "item_category": cats.item_category[1:].tolist()}))
    targets = category_histograms(split.train, cats.item_category, cfg.k)  # [U, K]
    sft_users, held = split_users(split.n_users, cfg.heldout_fraction, cfg.seed)
    if len(held) > cfg.heldout_max:  # a seeded random subset, not the lowest user ids
        held = np.sort(np.random.default_rng(cfg.seed).choice(held, cfg.heldout_max, replace=False))
    prior = targets[sft_users].mean(axis=0)  # [K], the best constant predictor under KL
    schedule = batch_schedule(sft_users, cfg.batch_size, cfg.max_steps, cfg.seed)  # [S, B]

    loaded = load_model(llm_spec, cache_dir=cache_dir, lm_head=cfg.output == "lm")
    described, tok = loaded.describe(), loaded.tokenizer
    verbalizer = _verbalizer(loaded, cfg.k) if cfg.output == "lm" else None
    model = loaded.model.get_decoder() if cfg.output == "lm" else loaded.model
    del loaded
    pad, hidden = int(tok.pad_token_id), int(model.config.hidden_size)
    strings = item_strings(dataset.items, dataset.n_items, mode, cfg.prompt, dataset.name)
    prompts = PromptTokens(tok, strings, cfg.prompt, cfg.k)
    inputs = [prompts.user(s) for s in split.train]  # [U] token id lists, training items only

    def new_head() -> torch.nn.Module:
        if verbalizer is not None:
            return verbalizer
        torch.manual_seed(cfg.seed)
        return CategoryHead(hidden, cfg.k, torch.from_numpy(prior) if cfg.prior_init else None,
                            cfg.head_dropout)

    # (a) untuned: the frozen LLM; its head trained on frozen features with the SFT's exact
    # batches, steps and learning rate (the verbalizer has nothing to train: zero-shot).
    t = time.perf_counter()
    need = np.unique(np.concatenate([schedule.ravel(), held])) if verbalizer is None else held
    feat_file = run_dir / "frozen_features.pt"
    saved = checkpoint.load(feat_file) if resume and feat_file.is_file() else None
    if saved is not None and set(need.tolist()) <= set(saved["users"].tolist()):
        frozen = dict(zip(saved["users"].tolist(), saved["features"].numpy(), strict=True))
    else:
        feats = encode_last(model, [inputs[u] for u in need], pad, cfg.encode_batch_size,
                            cfg.bf16, "frozen features", progress)
        checkpoint.save(feat_file, {"users": torch.from_numpy(need), "features": torch.from_numpy(feats)})
        frozen = dict(zip(need.tolist(), feats, strict=True))
    base_head = new_head()
    base_losses = train_head_only(base_head, frozen, targets, schedule, cfg.head_lr,
                                  cfg.weight_decay, cfg.grad_clip)
    untuned = reconstruction_metrics(_probs(base_head, np.stack([frozen[u] for u in held])), targets[held])
    seconds["untuned"] = time.perf_counter() - t
    trivial = reconstruction_metrics(np.tile(prior, (len(held), 1)), targets[held])

    # (b) tuned: LoRA + head, user-level SFT.
    peft_model = add_tslrec_lora(model, cfg)
    head = new_head()
    sft = train_sft(peft_model, head, inputs, targets, schedule, pad_id=pad, lr=cfg.lr,
                    head_lr=cfg.head_lr, bf16=cfg.bf16, run_dir=run_dir, save_steps=cfg.save_steps,
                    seed=cfg.seed, weight_decay=cfg.weight_decay, grad_clip=cfg.grad_clip,
                    resume=resume, progress=progress)
    seconds["sft"] = sft.pop("seconds")
    t = time.perf_counter()
    held_feats = encode_last(peft_model, [inputs[u] for u in held], pad, cfg.encode_batch_size,
                             cfg.bf16, "held-out", progress)
    tuned = reconstruction_metrics(_probs(head, held_feats), targets[held])
    seconds["eval"] = time.perf_counter() - t
    a_hash = save_adapter(peft_model, run_dir / "adapter")
    checkpoint.save(run_dir / "head.pt", {"head": head.state_dict(), "k": cfg.k})

    # Augmentation: every item alone through the tuned LLM.
    t = time.perf_counter()
    ids = np.arange(1, dataset.n_items + 1, dtype=np.int64)
    raw = encode_last(peft_model, [prompts.item(int(i)) for i in ids], pad, cfg.encode_batch_size,
                      cfg.bf16, "items", progress)  # [N, H]
    if not np.isfinite(raw).all():
        raise InputError("the tuned model produced NaN/Inf item vectors; try dtype fp32")
    item_pred = _probs(head, raw).argmax(axis=1)
    item_agree = float((item_pred == cats.item_category[1:]).mean())
    vectors, mean = centre_normalise(raw)
    seconds["items"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t_start
    n_sft = len(sft_users)
    info = {
        "model": described, "mode": mode, "output": cfg.output, "adapter_hash": a_hash,
        "adapter_dir": str(run_dir / "adapter"), "sasrec_id": sasrec_v, "categories": cats.describe(),
        "heldout": {"untuned": untuned, "tuned": tuned, "global_frequency": trivial},
        "untuned_baseline": "zero-shot verbalizer" if verbalizer is not None else
        "head trained on frozen-LLM features, same batches/steps/lr",
        "counts": {"sft_users": n_sft, "heldout_users": len(held), "users": split.n_users,
                   "instance_level_examples": instance_level_count([split.train[u] for u in sft_users]),
                   "examples_seen": int(schedule.size), "passes": round(schedule.size / n_sft, 3)},
        "prompt_tokens": {"mean": float(np.mean([len(x) for x in inputs])),
                          "max": int(max(len(x) for x in inputs))},
        "example_prompt": tok.decode(inputs[int(sft_users[0])]),
        "item_category_agreement": item_agree,
        "item_category_chance": max(cats.sizes) / dataset.n_items,
        "losses": sft["losses"], "baseline_losses": base_losses, "steps": sft["steps"],
        "resumed_from": sft["resumed_from"], "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "centre": mean.tolist(),
    }
    (run_dir / "tslrec_info.json").write_text(
        json.dumps({k: v for k, v in info.items() if k != "centre"}, indent=1, default=str))
    return ids, vectors, info


def write_tslrec(dataset: Dataset, split: Split, cfg: TslrecConfig, llm_spec: LLMSpec,
                 store: EmbeddingStore, run_dir: Path, sasrec_ref: str | VersionRef = SASREC_KIND,
                 resume: bool = False, cache_dir: Path | None = None,
                 progress: bool = False) -> VersionRef:
    """Run TSLRec and write `items/tslrec` (centred, unit rows) with a full manifest."""
    ids, vectors, info = run_tslrec(dataset, split, cfg, llm_spec, store, run_dir, sasrec_ref,
                                    resume, cache_dir, progress)
    model, held, losses = info["model"], info["heldout"], info["losses"]
    caps = {"max_steps": cfg.max_steps, "batch_size": cfg.batch_size,
            "max_items": cfg.prompt.max_items, "max_tokens": cfg.prompt.max_tokens,
            "item_max_tokens": cfg.prompt.item_max_tokens, "heldout_max": cfg.heldout_max,
            "lora_layers": cfg.lora_layers}
    manifest = ManifestInput(
        dataset_fingerprint=dataset.fingerprint,
        producer=Producer(
            generator="tslrec", model_id=model["model_id"], model_file_hash=model["weights_sha256"],
            adapter_hash=info["adapter_hash"], prompt_template=cfg.prompt.model_dump_json(),
            config={"tslrec": cfg.model_dump(mode="json"), "model": model, "k": cfg.k,
                    "mode": info["mode"], "output": cfg.output, "pooling": "last", "caps": caps,
                    "steps_run": info["steps"], "categories": info["categories"],
                    "untuned_baseline": info["untuned_baseline"],
                    "example_prompt": info["example_prompt"]},
        ),
        metric="cosine", normalized=True, centered=True, mean=info["centre"],
        parents=[Parent(kind=info["sasrec_id"].kind, version=info["sasrec_id"].version)],
        metrics={
            "heldout_kl_untuned": held["untuned"]["kl"], "heldout_kl_tuned": held["tuned"]["kl"],
            "heldout_kl_global": held["global_frequency"]["kl"],
            "heldout_top1_untuned": held["untuned"]["top1"], "heldout_top1_tuned": held["tuned"]["top1"],
            "heldout_top1_global": held["global_frequency"]["top1"],
            "n_heldout": held["tuned"]["n"], **{f"count_{k}": v for k, v in info["counts"].items()},
            "item_category_agreement": info["item_category_agreement"],
            "item_category_chance": info["item_category_chance"],
            "kmeans_inertia": info["categories"]["inertia"],
            "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None,
            "loss_mean_last10": float(np.mean(losses[-10:])) if losses else None,
            "prompt_tokens_mean": info["prompt_tokens"]["mean"],
            "seconds": info["seconds"],
        },
    )
    return store.write(dataset.name, KIND, ids, vectors, manifest, expected_ids=ids)


def report_markdown(dataset_name: str, ref: str, metrics: dict) -> str:
    """The held-out reconstruction table of a stored version (for a flow artifact)."""
    rows = [("untuned LLM", "untuned"), ("tuned LLM (TSLRec SFT)", "tuned"),
            ("global category frequency", "global")]
    lines = [f"## TSLRec on {dataset_name}", "", f"`{ref}`", "",
             f"Held-out users: {metrics.get('n_heldout')}", "",
             "| predictor | KL(p ‖ q) ↓ | top-1 ↑ |", "|---|---|---|"]
    lines += [f"| {name} | {metrics[f'heldout_kl_{key}']:.4f} | {metrics[f'heldout_top1_{key}']:.3f} |"
              for name, key in rows]
    lines += ["", f"SFT examples: {metrics.get('count_sft_users')} users (one each) vs "
              f"{metrics.get('count_instance_level_examples')} interactions instance-level."]
    return "\n".join(lines)
