"""Training loop of the sequential backbones: Adam, early stopping on validation
full-ranking NDCG@10, best weights restored for test, per-epoch checkpoints and resume.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from models.item_emb import IdEmbedding, ItemEmbedding
from models.sequences import window_len
from models.srs import BACKBONES, SequentialRecommender
from models.srs.base import SAMPLED_LOSSES
from pipeline import checkpoint
from pipeline.batches import cloze_batch, next_item_batch, pad_left
from pipeline.config import TrainConfig
from pipeline.distributed import Team, launch, portable
from pipeline.errors import DivergedError, InputError
from pipeline.evaluate import Factored, Scorer, evaluate, pick
from pipeline.llm.hardware import bf16_is_fast
from pipeline.negatives import SharedNegatives
from pipeline.optim import Optimizer
from pipeline.split import Split

log = logging.getLogger(__name__)
SELECT = ("full", "overall", "ndcg@10")  # model selection: validation only, never test


@dataclass(frozen=True)
class RunResult:
    test_rows: list[dict]  # protocol, group, metric, value, n_users
    valid_rows: list[dict]
    best_epoch: int
    epochs_run: int
    train_seconds: float
    # One entry per evaluation during training: {"epoch", "loss" (the epoch's mean training
    # loss), "valid" (full NDCG@10, the selection metric)}, so a plateau or a late
    # improvement shows without rerunning (empty for baselines).
    curve: list[dict] = field(default_factory=list)


def sparse_rows(cfg: TrainConfig) -> bool:
    """A sampled loss only ever looks an ID table's rows up, so its gradient is row-sparse
    and SparseAdam updates just those rows (pipeline/optim.py)."""
    return cfg.model.loss in SAMPLED_LOSSES


def build_model(cfg: TrainConfig, n_items: int, item_emb: ItemEmbedding | None = None) -> SequentialRecommender:
    emb = item_emb if item_emb is not None else IdEmbedding(n_items, cfg.model.dim, sparse=sparse_rows(cfg))
    return BACKBONES[cfg.model.backbone](cfg.model, emb)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        log.warning("device 'cuda' asked for but none is available; using the CPU")
        return torch.device("cpu")
    return torch.device(name)


UserTap = Callable[[np.ndarray, torch.Tensor], None]  # (user ids [B] 1-based, vectors [B, D])


def model_scorer(model: SequentialRecommender, bf16: bool = False,
                 tap: UserTap | None = None) -> Scorer:
    """Scores with each batch padded to its longest input's window (`window_len`: the power
    of two above its length, at most max_len); the evaluation batches users of one window
    together, so each user is encoded at a length that depends on its own history alone.

    With bf16 the encoder runs under autocast; the user vector is cast back and scored in
    fp32, so scores keep fp32 resolution (bf16 scores would tie far more often). `tap`, if
    given, sees every batch's user vectors as they are computed.
    """
    def users(users: np.ndarray, inputs: list[np.ndarray]) -> torch.Tensor:
        device = next(model.parameters()).device
        t = window_len(max(len(s) for s in inputs), model.cfg.max_len)
        seq = pad_left(inputs, t).to(device)  # [B, t]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            vectors = model(seq).float()  # [B, D]
        if tap is not None:
            tap(users, vectors)
        return vectors

    def score(users_: np.ndarray, inputs: list[np.ndarray]) -> torch.Tensor:
        return model.score_all(users(users_, inputs)).float().cpu()  # outside autocast: fp32

    def table() -> torch.Tensor:
        return model.item_emb.scoring_table().float().cpu()  # [N+1, D]

    return Factored(score, lambda u, i: users(u, i).cpu(), table)


def popularity_scorer(split: Split) -> Scorer:
    """The `pop` baseline: every user gets the training popularity of each item."""
    pop = torch.from_numpy(split.train_item_counts().astype(np.float32))  # [N+1]

    def score(users: np.ndarray, inputs: list[np.ndarray]) -> torch.Tensor:
        return pop.expand(len(users), -1)
    return score


def train_srs(split: Split, cfg: TrainConfig, run_dir: Path, resume: bool = False,
              on_epoch_end: Callable[[int, float], None] | None = None,
              item_emb: ItemEmbedding | None = None, progress: bool = True,
              aux_loss: Callable[[SequentialRecommender, dict], torch.Tensor] | None = None,
              model_fn: Callable[[], SequentialRecommender] | None = None,
              valid_tap: UserTap | None = None) -> RunResult:
    """Train cfg.backbone on split.train, select on validation, evaluate on test.

    run_dir receives config.json, last.pt (every epoch), best.pt and result.json. With
    `resume`, training continues from last.pt with its RNG state, so it ends where an
    uninterrupted run would. `item_emb` replaces the ID table (frozen LLM tables, adapters);
    `aux_loss(model, batch)` is added to every step's loss (e.g. LLMEmb's alignment term);
    batch["user"] [B] holds each row's 1-based user id. `model_fn` builds the whole model
    instead of build_model (LLM-ESR's dual view); it is called after seeding. `valid_tap`
    sees the user vectors [B, D] of every validation batch during training (eval mode, each
    user's whole training history; LLM-ESR's `validation` teacher keeps them). With
    cfg.nproc > 1 the loop runs in that many processes (`_train_ranks`).
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(cfg.model_dump_json(indent=2))
    if cfg.backbone == "pop":
        return _pop_result(split, cfg)
    if cfg.nproc > 1:
        return _train_ranks(split, cfg, run_dir, resume, on_epoch_end, item_emb, progress,
                            aux_loss, model_fn)
    return _train(split, cfg, run_dir, resume, on_epoch_end, item_emb, progress, aux_loss, model_fn,
                  valid_tap=valid_tap)


def _train(split: Split, cfg: TrainConfig, run_dir: Path, resume: bool,
           on_epoch_end: Callable[[int, float], None] | None, item_emb: ItemEmbedding | None,
           progress: bool, aux_loss: Callable[[SequentialRecommender, dict], torch.Tensor] | None,
           model_fn: Callable[[], SequentialRecommender] | None, team: Team | None = None,
           valid_tap: UserTap | None = None) -> RunResult:
    """The loop of `train_srs`: in this process, or as one rank of `team`, where every rank
    runs it in lockstep and rank 0 alone writes files (pipeline/distributed.py)."""
    gen = checkpoint.seed_everything(cfg.seed) if team is None else team.seed(cfg.seed)
    device = resolve_device(cfg.device) if team is None else team.device
    model = (model_fn() if model_fn is not None else build_model(cfg, split.n_items, item_emb)).to(device)
    if team is not None:
        team.broadcast_module(model)  # ranks were seeded apart: rank 0's initial weights
    writes = team is None or team.is_lead
    evaluate_ = evaluate if team is None else team.evaluate  # ranks share users, then agree
    if cfg.bf16 is None:
        cfg = cfg.model_copy(update={"bf16": bf16_is_fast(device)})
    opt = Optimizer(model, cfg)
    state = {"epoch": 0, "best": -1.0, "best_epoch": 0, "bad": 0, "seconds": 0.0, "curve": []}
    best_weights = copy.deepcopy(model.state_dict())
    last = run_dir / "last.pt"
    if resume and last.is_file():
        ckpt = checkpoint.load(last, device)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"], ckpt["scheduler"])
        best_weights = ckpt["best_model"]
        state = ckpt["state"]
        if team is None:
            checkpoint.set_rng_state(ckpt["rng"], gen)
        else:
            team.restore_rng(ckpt, gen, cfg.seed)
        state.setdefault("curve", [])  # checkpoints written before the curve was kept
        log.info("resumed %s at epoch %d", run_dir, state["epoch"])

    keep = [u for u, s in enumerate(split.train) if len(s) >= 2]  # one item has no next-item target
    trainable = [split.train[u] for u in keep]
    users = np.asarray(keep, dtype=np.int64) + 1  # row i of `trainable` is user users[i]
    scorer = model_scorer(model, bool(cfg.bf16))
    valid_scorer = scorer if valid_tap is None else model_scorer(model, bool(cfg.bf16), valid_tap)
    negatives = None
    if cfg.model.loss in SAMPLED_LOSSES:
        negatives = SharedNegatives(split.n_items, cfg.model.negatives, cfg.model.sampler,
                                    split.train_item_counts())
    while state["epoch"] < cfg.epochs and state["bad"] < cfg.patience:
        start = time.perf_counter()
        model.train()
        loss = _run_epoch(model, opt, trainable, users, cfg, gen, progress, state["epoch"] + 1,
                          aux_loss, negatives, team)
        state["epoch"] += 1
        if state["epoch"] % cfg.eval_every == 0 or state["epoch"] == cfg.epochs:
            model.eval()
            try:
                score = pick(evaluate_(valid_scorer, split, "valid", cfg.eval), *SELECT)
            except DivergedError as err:
                raise DivergedError(f"training diverged at epoch {state['epoch']}: {err}; "
                                    f"lower the learning rate (lr={cfg.lr:g})") from None
            state["curve"].append({"epoch": state["epoch"], "loss": loss, "valid": score})
            if cfg.lr_decay_patience:
                opt.plateau(score)
            if score > state["best"]:
                state.update(best=score, best_epoch=state["epoch"], bad=0)
                best_weights = copy.deepcopy(model.state_dict())
            else:
                state["bad"] += cfg.eval_every
            log.info("epoch %d loss %.4f valid full/ndcg@10 %.4f (best %.4f @ %d)",
                     state["epoch"], loss, score, state["best"], state["best_epoch"])
        state["seconds"] += time.perf_counter() - start
        opt_state, sched_state = opt.state_dict()
        # every rank's RNG streams (a collective), so a resumed team continues exactly
        ranks = {} if team is None else {"rank_rng": team.all_rng_states(gen)}
        if writes:
            checkpoint.save(last, {
                "model": model.state_dict(), "optimizer": opt_state, "scheduler": sched_state,
                "best_model": best_weights, "state": state,
                "rng": checkpoint.rng_state(gen), "config": cfg.model_dump(mode="json"), **ranks,
            })
        if on_epoch_end is not None:
            on_epoch_end(state["epoch"], loss)

    model.load_state_dict(best_weights)
    model.eval()
    if writes:
        checkpoint.save(run_dir / "best.pt", {"model": best_weights, "config": cfg.model_dump(mode="json"),
                                              "epoch": state["best_epoch"]})
    result = RunResult(
        test_rows=evaluate_(scorer, split, "test", cfg.eval),
        valid_rows=evaluate_(scorer, split, "valid", cfg.eval),
        best_epoch=state["best_epoch"], epochs_run=state["epoch"],
        train_seconds=state["seconds"], curve=state["curve"],
    )
    if writes:
        info = {} if team is None else {"distributed": team.info(cfg.seed)}
        (run_dir / "result.json").write_text(json.dumps({**result.__dict__, **info}, indent=1))
    return result


def _train_ranks(split: Split, cfg: TrainConfig, run_dir: Path, resume: bool,
                 on_epoch_end: Callable[[int, float], None] | None, item_emb: ItemEmbedding | None,
                 progress: bool, aux_loss: Callable | None, model_fn: Callable | None) -> RunResult:
    """`_train` in cfg.nproc processes (pipeline/distributed.py); rank 0's result.

    Only the backbone's own loss is split by rows: an auxiliary loss or a custom model
    (LLM-ESR, LLMEmb's RAT) has batch-level terms and closures, and trains in one process.
    `on_epoch_end` runs in rank 0's process, so it must pickle (a module-level callable).
    """
    if aux_loss is not None or model_fn is not None:
        raise InputError(f"nproc={cfg.nproc}: multi-process training covers the plain backbones "
                         "(method srs, any item table); an auxiliary loss or custom model "
                         "(LLM-ESR, LLMEmb's RAT) trains in one process: --set nproc=1")
    args = (portable(split), cfg, run_dir, resume, on_epoch_end, item_emb, progress)
    return launch(_train_rank, args, cfg.nproc, resolve_device(cfg.device), cfg.threads)


def _train_rank(team: Team, split: Split, cfg: TrainConfig, run_dir: Path, resume: bool,
                on_epoch_end: Callable[[int, float], None] | None, item_emb: ItemEmbedding | None,
                progress: bool) -> RunResult | None:
    """One rank's `_train`; only rank 0 shows progress, calls on_epoch_end and returns."""
    lead = team.is_lead
    result = _train(split, cfg, run_dir, resume, on_epoch_end if lead else None, item_emb,
                    progress and lead, None, None, team)
    return result if lead else None


def _run_epoch(model: SequentialRecommender, opt: Optimizer, seqs: list[np.ndarray],
               users: np.ndarray, cfg: TrainConfig, gen: torch.Generator, progress: bool, epoch: int,
               aux_loss: Callable[[SequentialRecommender, dict], torch.Tensor] | None = None,
               negatives: SharedNegatives | None = None, team: Team | None = None) -> float:
    n_items, bce = model.n_items, cfg.model.loss == "bce"
    rows: list[np.ndarray] = seqs
    last_only = torch.zeros(0, dtype=torch.bool)
    if model.objective == "cloze":
        # Each user twice: randomly masked, and with only its last item masked (as at
        # inference), that copy cut at a random point of the history with cloze_prefixes.
        rows = seqs + (_random_prefixes(seqs, gen) if cfg.model.cloze_prefixes else seqs)
        users = np.concatenate([users, users])
        last_only = torch.arange(len(rows)) >= len(seqs)
    order = _length_bucketed(rows, cfg.batch_size, gen)
    total, steps = 0.0, 0
    batches = range(0, len(rows), cfg.batch_size)
    for start in tqdm(batches, desc=f"epoch {epoch}", leave=False, disable=not progress):
        idx = order[start:start + cfg.batch_size]
        chunk = [rows[i] for i in idx.tolist()]
        if model.objective == "cloze":
            batch = cloze_batch(chunk, cfg.model.max_len, n_items, cfg.model.mask_prob, gen, bce,
                                last_only[idx], users=users[idx.numpy()])
        else:
            batch = next_item_batch(chunk, cfg.model.max_len, n_items, gen, bce, users=users[idx.numpy()])
        if negatives is not None:  # the sampled losses' K negatives, shared by the batch
            batch |= negatives.draw(gen, batch["target"])
        if team is not None:  # every rank drew this global batch; each trains on its rows
            total += _team_step(team, model, opt, batch, cfg, epoch, steps + 1)
            steps += 1
            continue
        device = next(model.parameters()).device
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            loss = model.loss(batch)
            if aux_loss is not None:
                loss = loss + aux_loss(model, batch)
        if not torch.isfinite(loss.detach()):
            raise DivergedError(f"training diverged at epoch {epoch}, step {steps + 1}: the loss "
                                f"is {float(loss.detach()):g}; lower the learning rate (lr={cfg.lr:g})")
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += float(loss.detach())
        steps += 1
    return total / max(steps, 1)


def _team_step(team: Team, model: SequentialRecommender, opt: Optimizer, batch: dict,
               cfg: TrainConfig, epoch: int, step: int) -> float:
    """One optimiser step of one rank on its rows of the global `batch`, with the gradient
    of the global batch mean (pipeline/distributed.py); the global batch's loss."""
    def loss_of(rows: dict[str, torch.Tensor]) -> torch.Tensor:
        device = next(model.parameters()).device
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            return model.loss({k: v.to(device, non_blocking=True) for k, v in rows.items()})

    opt.zero_grad()
    loss = team.backward(model, batch, loss_of)  # the same on every rank: all stop together
    if not torch.isfinite(loss):
        raise DivergedError(f"training diverged at epoch {epoch}, step {step}: the loss is "
                            f"{float(loss):g}; lower the learning rate (lr={cfg.lr:g})")
    opt.step()
    return float(loss)


def _random_prefixes(seqs: list[np.ndarray], gen: torch.Generator) -> list[np.ndarray]:
    """Each sequence cut to a uniform length in 2..len (whole when shorter than 2)."""
    lengths = torch.tensor([len(s) for s in seqs])
    keep = 2 + (torch.rand(len(seqs), generator=gen) * (lengths - 1).clamp_min(0)).long()
    return [s[:k] for s, k in zip(seqs, keep.tolist(), strict=True)]


def _length_bucketed(rows: list[np.ndarray], batch_size: int, gen: torch.Generator,
                     window: int = 8) -> torch.Tensor:
    """A random order in which each run of `window` batches is sorted by length.

    Batches then hold sequences of similar length and are trimmed to their longest, which
    cuts the padding computed on; batch composition and batch order stay random.
    """
    order = torch.randperm(len(rows), generator=gen)
    lengths = torch.tensor([len(rows[i]) for i in order.tolist()])
    span = batch_size * window
    for start in range(0, len(order), span):
        part = slice(start, start + span)
        order[part] = order[part][torch.argsort(lengths[part], descending=True, stable=True)]
    n_batches = (len(order) + batch_size - 1) // batch_size
    batch_order = torch.randperm(n_batches, generator=gen)
    return torch.cat([order[b * batch_size:(b + 1) * batch_size] for b in batch_order.tolist()])


def _pop_result(split: Split, cfg: TrainConfig) -> RunResult:
    scorer = popularity_scorer(split)
    return RunResult(test_rows=evaluate(scorer, split, "test", cfg.eval),
                     valid_rows=evaluate(scorer, split, "valid", cfg.eval),
                     best_epoch=0, epochs_run=0, train_seconds=0.0)
