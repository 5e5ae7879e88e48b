"""LLMEmb stage 1, SCFT: contrastive LoRA fine-tuning of an LLM on attribute-dropped item views.

Two views of an item keep a random 60 % of its "key is value" attributes each, in random
order (METHODS.md §4.3); the LLM (LoRA on every attention and MLP projection, mean
pooling) learns to embed the two views of one item together and other items apart with
`models.losses.SoftContrastiveLoss` (learnable τ, init 3). Then every item's *full* prompt
is embedded with the tuned model → `items/llmemb-scft`.

Built on sentence-transformers: the LLM is a `Transformer` + mean `Pooling` module pair,
LoRA comes through its peft integration, and `SentenceTransformerTrainer` runs the loop,
the bf16 autocast, the linear-decay schedule and the checkpoints `resume=True` continues
from. SCFT sees item text only: no interaction, and so no valid/test item, ever enters it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from embeddings_store import EmbeddingStore, ManifestInput, Producer, VersionRef
from models.losses import InfoNCELoss, ScftLoss, SoftContrastiveLoss
from pipeline import checkpoint
from pipeline.data.dataset import Dataset
from pipeline.errors import InputError
from pipeline.llm import LLMSpec, load_model, save_adapter
from pipeline.methods.llmemb.augment import augment_views, recall_at_1, split_items, view_texts
from pipeline.methods.llmemb.config import ScftConfig
from pipeline.methods.semantic.encode import centre_normalise
from pipeline.prompts import Pairs, item_attribute_pairs, render_item

__all__ = ["KIND", "augment_views", "recall_at_1", "run_scft", "split_items",
           "train_scft", "view_texts", "write_scft"]

log = logging.getLogger(__name__)
KIND = "items/llmemb-scft"
TAU_FILE = "scft_loss.pt"  # the loss's learned τ, saved beside each trainer checkpoint


def build_st_model(folder: Path, cfg: ScftConfig, dtype: torch.dtype, device: torch.device):
    """The LLM (weights in `folder`) as a SentenceTransformer: Transformer + mean Pooling."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    body = Transformer(str(folder), max_seq_length=cfg.max_length, model_kwargs={"dtype": dtype})
    tok = body.tokenizer if hasattr(body, "tokenizer") else body.processor
    if getattr(tok, "pad_token", None) is None:
        tok.pad_token = tok.eos_token or tok.unk_token  # pads are masked out of the mean
    hidden = int(body.auto_model.config.hidden_size)
    return SentenceTransformer(modules=[body, Pooling(hidden, "mean")], device=str(device))


def add_scft_lora(st_model, cfg: ScftConfig) -> None:
    from peft import LoraConfig

    st_model.add_adapter(LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                                    lora_dropout=cfg.lora_dropout,
                                    target_modules=list(cfg.lora_targets),
                                    task_type="FEATURE_EXTRACTION"))


def make_loss(cfg: ScftConfig) -> SoftContrastiveLoss:
    cls = SoftContrastiveLoss if cfg.loss == "soft" else InfoNCELoss
    return cls(tau=cfg.tau, learnable_tau=cfg.learnable_tau, normalize=cfg.normalize)


def encode(st_model, texts: list[str], batch_size: int) -> np.ndarray:
    """[N, H] float32 mean-pooled states (the full forward, no view split: §4.6.7)."""
    out = st_model.encode(texts, batch_size=batch_size, convert_to_numpy=False,
                          convert_to_tensor=True, show_progress_bar=False)
    return out.float().cpu().numpy()


def last_checkpoint(folder: Path) -> Path | None:
    """The newest complete trainer checkpoint. The trainer writes trainer_state.json last
    and SaveTau writes τ after it, so a run killed inside a save resumes from the one before."""
    steps = [(int(p.name.split("-")[1]), p) for p in folder.glob("checkpoint-*")
             if p.name.split("-")[1].isdigit() and (p / "trainer_state.json").is_file()
             and (p / TAU_FILE).is_file()]
    return max(steps)[1] if steps else None


def train_scft(st_model, ids: np.ndarray, pairs: list[Pairs], cfg: ScftConfig, run_dir: Path,
               resume: bool = False, progress: bool = False) -> dict:
    """Fine-tune `st_model` (LoRA already added) on view pairs of the given items.

    Rows: one fresh augmentation of every item per pass ("epoch"), as many passes as
    max_steps needs, seeded per pass, so a resumed run sees the same rows. Returns the
    per-step loss history and τ. Checkpoints go to run_dir/checkpoints every save_steps.
    """
    from datasets import Dataset as HFDataset
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from transformers import PrinterCallback, TrainerCallback

    if len(ids) < cfg.batch_size:
        raise InputError(f"SCFT needs at least batch_size={cfg.batch_size} training items, has {len(ids)}")
    passes = -(-cfg.max_steps * cfg.batch_size // len(ids))
    a: list[str] = []
    b: list[str] = []
    for p in range(passes):
        va, vb = view_texts(ids, pairs, cfg, seed=cfg.seed * 1000 + p + 1)
        a += va
        b += vb
    data = HFDataset.from_dict({"view_a": a, "view_b": b})
    loss = ScftLoss(st_model, make_loss(cfg))
    ckpt_dir = run_dir / "checkpoints"
    device = st_model.device
    # Autocast only where the weights were loaded in bf16 (load_model picks bf16 on CPUs
    # with native bf16 and on bf16-capable GPUs); emulated bf16 is slower than fp32.
    bf16 = cfg.bf16 and st_model[0].auto_model.dtype == torch.bfloat16

    class SaveTau(TrainerCallback):
        # The trainer checkpoints the model and optimiser, not parameters of the loss.
        def on_save(self, args, state, control, **kw):
            checkpoint.save(ckpt_dir / f"checkpoint-{state.global_step}" / TAU_FILE,
                            {"tau": loss.loss.tau.detach().cpu()})  # aside, then renamed

    args = SentenceTransformerTrainingArguments(
        output_dir=str(ckpt_dir), max_steps=cfg.max_steps, per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.lr, lr_scheduler_type="linear", warmup_steps=0.0, weight_decay=0.0,
        bf16=bf16, use_cpu=device.type == "cpu", seed=cfg.seed, data_seed=cfg.seed,
        save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=2, logging_steps=1,
        report_to="none", dataloader_drop_last=True, disable_tqdm=not progress,
        remove_unused_columns=False,
    )
    trainer = SentenceTransformerTrainer(model=st_model, args=args, train_dataset=data, loss=loss,
                                         callbacks=[SaveTau()])
    if not progress:
        trainer.remove_callback(PrinterCallback)  # it prints every step's log dict
    last = last_checkpoint(ckpt_dir) if resume else None
    if last is not None and (last / TAU_FILE).is_file():
        with torch.no_grad():
            loss.loss.tau.copy_(checkpoint.load(last / TAU_FILE)["tau"])
        log.info("SCFT resumes from %s", last)
    trainer.train(resume_from_checkpoint=str(last) if last is not None else None)
    losses = [float(r["loss"]) for r in trainer.state.log_history if "loss" in r]
    return {"losses": losses, "tau": loss.loss.temperature, "steps": trainer.state.global_step,
            "resumed_from": last.name if last is not None else None}


def heldout_recall(st_model, ids: np.ndarray, pairs: list[Pairs], cfg: ScftConfig) -> float:
    """View-A → view-B recall@1 over held-out items (same seeded views on every call)."""
    ids, pairs = ids[: cfg.heldout_eval_max], pairs[: cfg.heldout_eval_max]
    a, b = view_texts(ids, pairs, cfg, seed=cfg.seed * 1000)  # pass seeds start at +1
    return recall_at_1(encode(st_model, a, cfg.encode_batch_size),
                       encode(st_model, b, cfg.encode_batch_size))


def run_scft(dataset: Dataset, cfg: ScftConfig, llm_spec: LLMSpec, run_dir: Path,
             resume: bool = False, cache_dir: Path | None = None,
             progress: bool = False) -> tuple[np.ndarray, np.ndarray, dict]:
    """SCFT end to end → (item ids [N], centred unit vectors [N, H] float32, info).

    The output vectors are centred on the catalogue mean and L2-normalised
    (`centre_normalise`), like the semantic kinds: raw mean-pooled states are anisotropic,
    and RAT's PCA and any cosine/FAISS reader want them centred; the mean is kept in info.
    """
    ids, pairs = item_attribute_pairs(dataset.items, cfg.prompt, dataset.name)
    if not dataset.text_columns or not any(len(p) for p in pairs):
        raise InputError(f"dataset {dataset.name} has no text attributes: LLMEmb's SCFT "
                         "needs item text to augment and cannot run on ids alone")
    loaded = load_model(llm_spec, cache_dir=cache_dir)  # resolves/converts; names the weights
    described, folder = loaded.describe(), loaded.folder
    device, dtype = loaded.device, loaded.dtype
    del loaded  # the trainer gets its own copy of the weights from `folder`
    torch.manual_seed(cfg.seed)
    st_model = build_st_model(folder, cfg, dtype, device)
    train_pos, held_pos = split_items(len(ids), cfg)
    held_ids, held_pairs = ids[held_pos], [pairs[i] for i in held_pos]
    can_eval = len(held_ids) >= 2
    before = heldout_recall(st_model, held_ids, held_pairs, cfg) if can_eval else None
    add_scft_lora(st_model, cfg)
    for p in st_model.parameters():  # fp32 adapters on bf16 weights: Adam steps stay exact
        if p.requires_grad:
            p.data = p.data.float()
    run_dir.mkdir(parents=True, exist_ok=True)
    train_info = train_scft(st_model, ids[train_pos], [pairs[i] for i in train_pos], cfg,
                            run_dir, resume=resume, progress=progress)
    after = heldout_recall(st_model, held_ids, held_pairs, cfg) if can_eval else None
    adapter_dir = run_dir / "adapter"
    a_hash = save_adapter(st_model[0].auto_model, adapter_dir)
    full = [render_item(p, cfg.prompt, int(i)) for i, p in zip(ids, pairs, strict=True)]
    vectors, mean = centre_normalise(encode(st_model, full, cfg.encode_batch_size))  # [N, H]
    info = {
        "model": described, "adapter_hash": a_hash, "adapter_dir": str(adapter_dir),
        "recall@1_before": before, "recall@1_after": after, "n_heldout": len(held_ids),
        "n_train_items": len(train_pos), "centre": mean.tolist(), **train_info,
    }
    (run_dir / "scft_info.json").write_text(
        json.dumps({k: v for k, v in info.items() if k != "centre"}, indent=1, default=str))
    return ids, vectors, info


def write_scft(dataset: Dataset, cfg: ScftConfig, llm_spec: LLMSpec, store: EmbeddingStore,
               run_dir: Path, resume: bool = False, cache_dir: Path | None = None) -> VersionRef:
    """Run SCFT and write `items/llmemb-scft` (centred, unit rows) with a full manifest."""
    ids, vectors, info = run_scft(dataset, cfg, llm_spec, run_dir, resume, cache_dir)
    model = info["model"]
    losses = info["losses"]
    manifest = ManifestInput(
        dataset_fingerprint=dataset.fingerprint,
        producer=Producer(
            generator="llmemb-scft", model_id=model["model_id"],
            model_file_hash=model["weights_sha256"], adapter_hash=info["adapter_hash"],
            prompt_template=cfg.prompt.model_dump_json(),
            config={"scft": cfg.model_dump(mode="json"), "model": model,
                    "step_cap": cfg.max_steps, "steps_run": info["steps"]},
        ),
        metric="cosine", normalized=True, centered=True, mean=info["centre"],
        metrics={
            "heldout_recall@1_before": info["recall@1_before"],
            "heldout_recall@1_after": info["recall@1_after"], "n_heldout": info["n_heldout"],
            "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None,
            "loss_mean_last10": float(np.mean(losses[-10:])) if losses else None,
            "tau": info["tau"],
        },
    )
    return store.write(dataset.name, KIND, ids, vectors, manifest, expected_ids=ids)
