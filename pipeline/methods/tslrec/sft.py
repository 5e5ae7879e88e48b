"""TSLRec's user-level SFT loop: LoRA + K-way head on last-token states, KL to histograms.

A plain loop rather than a Trainer: the head is a separate module, the batches are fixed
up front (`batch_schedule`), and a checkpoint is a small plain dict (the LoRA matrices,
the head, optimiser, scheduler, step, RNG states) that `torch.load(weights_only=True)`
reads, so a killed run resumes at its last saved step and continues the same curve.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from models.llm.pooling import pool
from models.losses import CategoryKLLoss
from pipeline import checkpoint

log = logging.getLogger(__name__)
CKPT = "sft_last.pt"


def autocast(model: nn.Module, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast where the weights were loaded in bf16 (load_model picks bf16 only on
    hardware where it is fast); otherwise nothing."""
    param = next(model.parameters())
    if enabled and any(p.dtype == torch.bfloat16 for p in model.parameters()):
        return torch.autocast(param.device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def collate(rows: Sequence[list[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids [B, T] and mask [B, T]; `pool(..., "last")` reads the mask."""
    t = max(len(r) for r in rows)
    ids = torch.full((len(rows), t), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), t), dtype=torch.long)
    for b, r in enumerate(rows):
        ids[b, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[b, : len(r)] = 1
    return ids.to(device), mask.to(device)


def last_states(model: nn.Module, rows: Sequence[list[int]], pad_id: int, bf16: bool) -> torch.Tensor:
    """[B, H] fp32 last-token states of the final layer (after the model's final norm)."""
    device = next(model.parameters()).device
    ids, mask = collate(rows, pad_id, device)
    with autocast(model, bf16):
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state  # [B, T, H]
    return pool(hidden, mask, "last")


def encode_last(model: nn.Module, rows: Sequence[list[int]], pad_id: int, batch_size: int,
                bf16: bool, desc: str = "encode", progress: bool = False) -> np.ndarray:
    """[M, H] float32 last-token states of every prompt, batched longest first."""
    order = np.argsort([-len(r) for r in rows], kind="stable")
    out = np.empty((len(rows), int(model.config.hidden_size)), dtype=np.float32)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for s in tqdm(range(0, len(rows), batch_size), desc=desc, disable=not progress, leave=False):
            idx = order[s : s + batch_size]
            out[idx] = last_states(model, [rows[i] for i in idx], pad_id, bf16).cpu().numpy()
    model.train(was_training)
    return out


def _step(loss: torch.Tensor, params: list, opt, sched, grad_clip: float) -> float:
    """One optimiser step on `loss` (backward, clip, step, schedule); returns the loss value."""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, grad_clip)
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
    return float(loss.detach())


def _linear_decay(opt: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - s / steps))


def _optimizer(groups: list[tuple[list[nn.Parameter], float]], weight_decay: float) -> torch.optim.AdamW:
    return torch.optim.AdamW([{"params": p, "lr": lr} for p, lr in groups if p],
                             weight_decay=weight_decay)


def train_head_only(head: nn.Module, features: dict[int, np.ndarray], targets: np.ndarray,
                    schedule: np.ndarray, lr: float, weight_decay: float = 0.0,
                    grad_clip: float = 1.0) -> list[float]:
    """The "untuned" baseline: the same head, batches, steps and schedule as the SFT, on
    frozen-LLM features (LoRA off). Returns the per-step losses."""
    loss_fn = CategoryKLLoss()
    params = [p for p in head.parameters() if p.requires_grad]
    if not params:
        return []
    opt = _optimizer([(params, lr)], weight_decay)
    sched = _linear_decay(opt, len(schedule))
    head.train()
    losses = []
    for users in schedule:
        x = torch.from_numpy(np.stack([features[int(u)] for u in users]))  # [B, H]
        loss = loss_fn(head(x), torch.from_numpy(targets[users]))
        losses.append(_step(loss, params, opt, sched, grad_clip))
    head.eval()
    return losses


def _trainable(model: nn.Module) -> dict[str, nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def train_sft(model: nn.Module, head: nn.Module, inputs: Sequence[list[int]], targets: np.ndarray,
              schedule: np.ndarray, *, pad_id: int, lr: float, head_lr: float, bf16: bool,
              run_dir: Path, save_steps: int, seed: int, weight_decay: float = 0.0,
              grad_clip: float = 1.0, resume: bool = False, progress: bool = False) -> dict:
    """User-level SFT: for each step's users, last-token state → head → KL to the target.

    `model` has LoRA added (its only trainable parameters); `inputs[u]` are user index u's
    prompt ids and `targets[u]` its histogram [K]. Checkpoints run_dir/sft_last.pt every
    `save_steps` and at the end; `resume` continues from it.
    """
    lora, head_params = _trainable(model), [p for p in head.parameters() if p.requires_grad]
    opt = _optimizer([(list(lora.values()), lr), (head_params, head_lr)], weight_decay)
    steps = len(schedule)
    sched = _linear_decay(opt, steps)
    loss_fn = CategoryKLLoss()
    gen = checkpoint.seed_everything(seed)
    start, losses, resumed_from = 0, [], None
    path = run_dir / CKPT
    if resume and path.is_file():
        state = checkpoint.load(path)
        with torch.no_grad():
            for n, t in state["lora"].items():
                lora[n].copy_(t)
        head.load_state_dict(state["head"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        checkpoint.set_rng_state(state["rng"], gen)
        start, losses, resumed_from = int(state["step"]), list(state["losses"]), int(state["step"])
        log.info("TSLRec SFT resumes at step %d", start)

    def save(step: int) -> None:
        checkpoint.save(path, {
            "lora": {n: p.detach().cpu().clone() for n, p in lora.items()},
            "head": head.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
            "step": step, "losses": losses, "rng": checkpoint.rng_state(gen),
        })

    model.train()
    head.train()
    params = list(lora.values()) + head_params
    t0 = time.perf_counter()
    bar = tqdm(range(start, steps), desc="tslrec sft", disable=not progress, leave=False)
    for step in bar:
        users = schedule[step]
        h = last_states(model, [inputs[int(u)] for u in users], pad_id, bf16)  # [B, H]
        loss = loss_fn(head(h), torch.from_numpy(targets[users]).to(h.device))
        losses.append(_step(loss, params, opt, sched, grad_clip))
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
        if (step + 1) % save_steps == 0 or step + 1 == steps:
            save(step + 1)
    model.eval()
    head.eval()
    return {"losses": losses, "steps": steps, "resumed_from": resumed_from,
            "seconds": round(time.perf_counter() - t0, 2)}
