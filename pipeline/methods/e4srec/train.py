"""E4SRec's training loop: AdamW + cosine schedule, validation-only model selection,
checkpoints every K steps and at every epoch end, exact resume, a wall-clock budget.

Only the trainable parts (LoRA, input projection, item head) are checkpointed, as plain
dicts (`torch.load(weights_only=True)` works), with the optimiser, the scheduler, the RNG
states and the loop's counters. The best-validation weights are restored before the single
test evaluation.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from models.e4srec import E4SRec
from pipeline import checkpoint
from pipeline.batches import pad_left
from pipeline.errors import InputError
from pipeline.evaluate import Scorer, evaluate, pick
from pipeline.methods.e4srec.config import E4SRecConfig
from pipeline.methods.e4srec.samples import epoch_order, make_batch, sample_pool, steps_per_epoch
from pipeline.methods.e4srec.schedule import CosineWarmup, eval_points, fit_plan
from pipeline.split import Split

log = logging.getLogger(__name__)
SELECT = ("full", "overall", "ndcg@10")  # validation only, never test
# A no-grad forward costs about this share of a training step, per row (measured ~0.2 on
# SmolLM2 with the shared prefix; the budget uses it until a validation is timed).
FORWARD_SHARE = 0.25


@dataclass(frozen=True)
class E4SRecResult:
    test_rows: list[dict]
    valid_rows: list[dict]  # of the selected weights, on the validation users used
    best_step: int
    best_epoch: int
    steps_run: int
    planned_steps: int
    epochs_run: float
    samples_seen: int
    train_seconds: float  # training + validations (the budgeted loop)
    total_seconds: float  # + the final test evaluation
    stopped_by_budget: bool
    validations: list[dict]  # {step, ndcg@10, seconds}


def e4srec_scorer(model: E4SRec, bf16: bool) -> Scorer:
    """A `pipeline.evaluate` Scorer: one LLM forward per batch of users, fp32 scores."""
    cap = model.cfg.max_history

    def score(users: np.ndarray, inputs: list[np.ndarray]) -> torch.Tensor:
        device = model.head.rows.device
        history = pad_left(inputs, max(1, min(cap, max(len(s) for s in inputs))))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            return model.score(history.to(device)).float().cpu()  # [B, N+1]
    return score


def valid_subset(split: Split, n_users: int | None, seed: int) -> Split:
    """The split restricted to a fixed seeded subset of users (all when n_users is None)."""
    if n_users is None or n_users >= split.n_users:
        return split
    idx = np.sort(np.random.default_rng(seed).choice(split.n_users, n_users, replace=False))
    return Split(train=[split.train[i] for i in idx], valid=split.valid[idx], test=split.test[idx],
                 n_items=split.n_items, negatives_of=lambda: split.negatives[idx])


def make_optimizer(model: E4SRec, cfg: E4SRecConfig) -> torch.optim.AdamW:
    lora = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("llm.")]
    heads = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("llm.")]
    return torch.optim.AdamW([{"params": lora, "lr": cfg.lr},
                              {"params": heads, "lr": cfg.head_lr or cfg.lr}],
                             weight_decay=cfg.weight_decay)


def train_e4srec(model: E4SRec, split: Split, cfg: E4SRecConfig, run_dir: Path,
                 resume: bool = False, progress: bool = True, bf16: bool = False,
                 on_step: Callable[[int, float], None] | None = None) -> E4SRecResult:
    """Train `model` on split.train, select on validation, evaluate the selected weights on test.

    run_dir receives config.json, last.pt (every `save_every_steps` and epoch end), best.pt
    and result.json. With `resume`, training continues from last.pt exactly (same batches,
    same RNG streams, same schedule). `on_step(step, loss)` is called after every step.
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(cfg.model_dump_json(indent=2))
    pool = sample_pool(split.train, cfg.targets_per_user, cfg.min_history)
    if not len(pool):
        raise InputError("no E4SRec training samples: every training sequence is shorter "
                         f"than min_history={cfg.min_history} + 1")
    spe = steps_per_epoch(len(pool), cfg.max_samples_per_epoch, cfg.batch_size)
    valid_split = valid_subset(split, cfg.valid_users, cfg.neg_seed)
    scorer = e4srec_scorer(model, bf16)
    device = model.head.rows.device
    gen = checkpoint.seed_everything(cfg.seed)  # a resumed run restores its own states below
    opt = make_optimizer(model, cfg)
    plan = CosineWarmup(cfg.warmup_steps, cfg.epochs * spe)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, plan)
    state: dict = {"step": 0, "planned": plan.total, "best": -1.0, "best_step": 0,
                   "seconds": 0.0, "samples": 0, "stopped_by_budget": False,
                   "validations": [], "best_valid_rows": [], "last_valid_step": -1,
                   "step_s": None, "eval_s_per_user": None}
    best = model.trainable_state_dict()
    last = run_dir / "last.pt"
    if resume and last.is_file():
        ckpt = checkpoint.load(last, "cpu")
        model.load_trainable_state_dict(ckpt["trainable"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        best, state = ckpt["best"], ckpt["state"]
        checkpoint.set_rng_state(ckpt["rng"], gen)
        log.info("resumed %s at step %d of %d", run_dir, state["step"], state["planned"])
    budget = cfg.max_minutes * 60 if cfg.max_minutes else None
    start, base = time.perf_counter(), state["seconds"]
    timed: list[float] = []  # step times in this process (the first one warms up)

    def elapsed() -> float:
        return base + time.perf_counter() - start

    def eval_cost(users: int) -> float:
        per_user = state["eval_s_per_user"] or (
            FORWARD_SHARE * (state["step_s"] or 0.0) / cfg.batch_size)
        return users * per_user

    def reserve() -> float:  # the validations still planned, plus the test evaluation
        todo = sum(p > state["step"] for p in eval_points(state["planned"], cfg.validations))
        return eval_cost(valid_split.n_users) * max(todo, 1) + eval_cost(split.n_users)

    def refit() -> None:
        if budget is None or state["step_s"] is None:
            return
        new = fit_plan(state["planned"], state["step"], budget, elapsed(), state["step_s"], reserve())
        if new < state["planned"]:
            log.info("budget: plan shrinks from %d to %d steps", state["planned"], new)
            state["planned"] = plan.total = new

    def validate(then_refit: bool = True) -> None:
        t0 = time.perf_counter()
        model.eval()
        rows = evaluate(scorer, valid_split, "valid", cfg.eval)
        seconds = time.perf_counter() - t0
        state["eval_s_per_user"] = seconds / valid_split.n_users
        score = pick(rows, *SELECT)
        state["validations"].append({"step": state["step"], "ndcg@10": score, "seconds": seconds})
        state["last_valid_step"] = state["step"]
        if score > state["best"]:
            nonlocal best
            best = model.trainable_state_dict()
            state.update(best=score, best_step=state["step"], best_valid_rows=rows)
        log.info("step %d valid full/ndcg@10 %.4f (best %.4f @ %d)", state["step"], score,
                 state["best"], state["best_step"])
        if then_refit:
            refit()

    def save() -> None:
        state["seconds"] = elapsed()
        checkpoint.save(last, {"trainable": model.trainable_state_dict(),
                               "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                               "best": best, "state": state, "rng": checkpoint.rng_state(gen),
                               "config": cfg.model_dump(mode="json")})

    order_epoch, order = -1, np.empty(0, dtype=np.int64)
    bar = tqdm(total=state["planned"], initial=state["step"], desc="e4srec", disable=not progress)
    while state["step"] < state["planned"]:
        if budget is not None and state["step_s"] is not None and (
                elapsed() + state["step_s"] + reserve() > budget):
            state["stopped_by_budget"] = True
            log.warning("budget of %.1f min reached after %d steps", cfg.max_minutes, state["step"])
            break
        epoch, within = divmod(state["step"], spe)
        if epoch != order_epoch:
            order_epoch, order = epoch, epoch_order(len(pool), cfg.max_samples_per_epoch, cfg.seed, epoch)
        rows = pool[order[within * cfg.batch_size:(within + 1) * cfg.batch_size]]
        history, target = make_batch(split.train, rows, model.cfg.max_history)
        t0 = time.perf_counter()
        model.train()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model.loss(history.to(device), target.to(device), cfg.mask_seen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]],
                                           cfg.grad_clip)
        opt.step()
        sched.step()
        timed.append(time.perf_counter() - t0)
        if len(timed) > 1:  # the first step in a process pays for warm-up
            state["step_s"] = float(np.mean(timed[1:][-20:]))
        state["step"] += 1
        state["samples"] += len(rows)
        value = float(loss.detach())
        bar.update(1)
        bar.set_postfix(loss=f"{value:.3f}", planned=state["planned"])
        if state["step"] % 10 == 0:
            log.info("step %d/%d loss %.4f lr %.2e (%.1f s/step)", state["step"], state["planned"],
                     value, sched.get_last_lr()[0], state["step_s"] or 0.0)
        if len(timed) == cfg.calibrate_steps:
            refit()
            bar.total = state["planned"]
        if state["step"] in eval_points(state["planned"], cfg.validations):
            validate()
            bar.total = state["planned"]
        if state["step"] % cfg.save_every_steps == 0 or state["step"] % spe == 0:
            save()
        if on_step is not None:
            on_step(state["step"], value)
    bar.close()
    if state["last_valid_step"] != state["step"]:
        validate(then_refit=False)
    save()

    model.load_trainable_state_dict(best)
    model.eval()
    checkpoint.save(run_dir / "best.pt", {"trainable": best, "step": state["best_step"],
                                          "config": cfg.model_dump(mode="json")})
    test_rows = evaluate(scorer, split, "test", cfg.eval)
    result = E4SRecResult(
        test_rows=test_rows, valid_rows=state["best_valid_rows"], best_step=state["best_step"],
        best_epoch=state["best_step"] // spe + (state["best_step"] % spe > 0),
        steps_run=state["step"], planned_steps=state["planned"],
        epochs_run=round(state["step"] / spe, 3), samples_seen=state["samples"],
        train_seconds=state["seconds"], total_seconds=elapsed(),
        stopped_by_budget=state["stopped_by_budget"], validations=state["validations"],
    )
    (run_dir / "result.json").write_text(json.dumps(asdict(result), indent=1))
    return result
