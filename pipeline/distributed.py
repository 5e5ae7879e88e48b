"""Training one run over N local processes with torch.distributed (`TrainConfig.nproc`).

Why it looks the way it does:
- Same global batch as one process. Every rank builds the whole global batch from the
  shared, checkpointed torch.Generator (so batch order, cloze masks, BCE negatives and any
  batch-wide draw such as `shared_negative` stay in lockstep), then keeps its contiguous
  rows [r·B/N, (r+1)·B/N). The loss is a mean over target positions, so a rank's loss is
  weighted by its share of the batch's target positions and the gradients are summed over
  ranks: the summed gradient is the one-process gradient of the global batch mean.
- One flat all_reduce per step (gradients, "had a gradient" flags, the weighted loss)
  instead of DDP: the backbones train through `model.loss(batch)`, not `forward`, which
  DDP's hooks need; a parameter that got no gradient on any rank keeps `grad=None`, so
  Adam skips it exactly as it would in one process; a non-finite loss on any rank is seen
  by every rank in the same step, so all stop together instead of hanging.
- Every user evaluated exactly once: the evaluation's users (all, or `eval.user_sample`'s)
  are cut into N contiguous, non-overlapping parts (no padding to equal sizes, unlike a
  DistributedSampler), ranks are gathered and rank 0 computes the metrics once and
  broadcasts them, so early stopping agrees.
- Dropout: rank r's global RNG is seeded with seed + r (rank 0 is the one-process
  stream); the model's weights are broadcast from rank 0 after construction.
- The launcher (`launch`) spawns the ranks, holds the rendezvous store itself (an OS-chosen
  port, no race for a free one), and watches every rank: one that dies (SIGKILL, OOM) or
  raises stops the others at once and surfaces as one error in the caller, the rank's own
  exception type kept (DivergedError, InputError).

Backend: gloo on CPU, NCCL on CUDA (rank r on cuda:r); the code is the same.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pipeline import checkpoint
from pipeline.errors import InputError
from pipeline.evaluate import EvalConfig, Scorer, metric_rows, rank_users, sample_users
from pipeline.split import Split

log = logging.getLogger(__name__)

# Batch keys drawn once for the whole batch, not per row (the sampled losses' shared
# negatives and their log counts, pipeline/negatives.py): every rank keeps them whole.
BATCH_WIDE_PREFIX = "shared_"
HOST = "127.0.0.1"
STOP_GRACE_S = 5.0  # after SIGTERM, a rank has this long before SIGKILL
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=30)


class RankFailedError(RuntimeError):
    """A training rank died without raising (a signal, the OOM killer) or raised something
    that could not be sent back whole."""


# ---- pure helpers: seeds, shards -----------------------------------------------------------


def rank_seeds(seed: int, nproc: int) -> list[int]:
    """The global-RNG (dropout) seed of each rank; rank 0's is the one-process seed."""
    return [seed + r for r in range(nproc)]


def row_slice(n: int, rank: int, world: int) -> slice:
    """Rank `rank`'s contiguous rows of n: [rank·n/world, (rank+1)·n/world). The parts tile
    0..n exactly once (sizes differ by at most one; a part may be empty when n < world)."""
    return slice(rank * n // world, (rank + 1) * n // world)


def shard_users(n_users: int, rank: int, world: int) -> np.ndarray:
    """0-based user indices one rank evaluates: contiguous, no user twice, none padded in."""
    part = row_slice(n_users, rank, world)
    return np.arange(part.start, part.stop, dtype=np.int64)


def run_info(seed: int, nproc: int, backend: str | None = None) -> dict:
    """What result.json and the run card record about a multi-process run."""
    info: dict[str, Any] = {"nproc": nproc, "rank_seeds": rank_seeds(seed, nproc)}
    if backend is not None:
        info["backend"] = backend
    return info


@dataclass(frozen=True)
class _Given:
    """A picklable `negatives_of`: the negatives already drawn (Split's is a closure)."""

    negatives: np.ndarray

    def __call__(self) -> np.ndarray:
        return self.negatives


def portable(split: Split) -> Split:
    """The split with its sampled-ranking negatives resolved, so it pickles to the ranks."""
    return replace(split, negatives_of=_Given(split.negatives))


# ---- one rank's view of the team -----------------------------------------------------------


@dataclass(frozen=True)
class Team:
    """This process's place in the process group, and the collectives training needs."""

    rank: int
    world: int
    backend: str
    device: torch.device  # where this rank's model and collective tensors live

    @property
    def is_lead(self) -> bool:
        """Rank 0: the only one that writes files and returns the result."""
        return self.rank == 0

    def seed(self, seed: int) -> torch.Generator:
        """Global streams (dropout) seeded with seed + rank; the batch generator with seed
        on every rank, so all ranks draw the same global batches."""
        gen = checkpoint.seed_everything(seed + self.rank)
        gen.manual_seed(seed)
        return gen

    def broadcast_module(self, model: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers everywhere (ranks seeded apart initialise apart)."""
        with torch.no_grad():
            for t in [*model.parameters(), *model.buffers()]:
                dist.broadcast(t.data, src=0)

    def rng_state(self, gen: torch.Generator) -> dict:
        state = checkpoint.rng_state(gen)
        if self.device.type == "cuda":  # dropout on a GPU draws from the CUDA stream
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def all_rng_states(self, gen: torch.Generator) -> list[dict]:
        """Every rank's RNG state, in rank order (a collective: every rank calls it)."""
        states: list[Any] = [None] * self.world
        dist.all_gather_object(states, self.rng_state(gen))
        return states

    def restore_rng(self, ckpt: dict, gen: torch.Generator, seed: int) -> None:
        """This rank's streams from a checkpoint. One written by another process count has
        no state for this rank: the batch generator still continues exactly, the dropout
        streams of ranks > 0 restart from seed + rank (logged)."""
        states = ckpt.get("rank_rng")
        if states is not None and len(states) == self.world:
            own = states[self.rank]
            checkpoint.set_rng_state(own, gen)
            if "cuda" in own and self.device.type == "cuda":
                torch.cuda.set_rng_state(own["cuda"].cpu(), self.device)
            return
        checkpoint.set_rng_state(ckpt["rng"], gen)
        if self.rank > 0:
            torch.manual_seed(seed + self.rank)
        if self.is_lead:
            log.warning("resuming with %d processes from a checkpoint of %s: the dropout "
                        "streams of ranks > 0 restart", self.world,
                        f"{len(states)} processes" if states else "one process")

    def local_batch(self, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], float]:
        """(this rank's rows of a global batch, its share of the batch's target positions).

        Row-wise tensors [B, ...] are sliced; batch-wide ones (`shared_*`, scalars) kept.
        """
        b = len(batch["target"])
        rows = row_slice(b, self.rank, self.world)
        local = {k: v if k.startswith(BATCH_WIDE_PREFIX) or v.dim() == 0 or v.shape[0] != b
                 else v[rows] for k, v in batch.items()}
        total = int((batch["target"] > 0).sum())
        return local, int((local["target"] > 0).sum()) / max(total, 1)

    def backward(self, model: torch.nn.Module, batch: dict[str, torch.Tensor],
                 loss_of: Callable[[dict[str, torch.Tensor]], torch.Tensor]) -> torch.Tensor:
        """Gradients of the global batch's mean loss in every trainable parameter of
        `model` (grads zeroed by the caller), and that loss (0-d, the same on every rank).
        A collective: every rank calls it. `loss_of(rows)` is the mean loss over the target
        positions of `rows`.

        Dense gradients go through one flat all_reduce; a sparse table's (nn.Embedding
        with sparse=True, for SparseAdam) are gathered as rows and summed, so the result is
        a sparse gradient over the union of the ranks' rows, as one process would have.
        """
        local, share = self.local_batch(batch)
        params = [p for p in model.parameters() if p.requires_grad]
        sparse = {id(m.weight) for m in model.modules()
                  if isinstance(m, torch.nn.Embedding) and m.sparse}
        device = params[0].device
        weighted = torch.zeros((), device=device)
        if share > 0:  # a rank with no target positions (a short last batch) adds nothing
            loss = loss_of(local)
            (loss * share).backward()
            weighted = loss.detach().float() * share
        for p in params:
            if id(p) in sparse:
                p.grad = self._sum_sparse(p)
        dense = [p for p in params if id(p) not in sparse]
        grads = [p.grad.reshape(-1).float() if p.grad is not None
                 else torch.zeros(p.numel(), device=device) for p in dense]
        had = torch.tensor([p.grad is not None for p in dense], dtype=torch.float32, device=device)
        flat = torch.cat([*grads, had, weighted.reshape(1)])
        dist.all_reduce(flat)  # sum over ranks
        start = 0
        for p, any_grad in zip(dense, flat[-1 - len(dense):-1].tolist(), strict=True):
            n = p.numel()
            p.grad = flat[start:start + n].view_as(p).to(p.dtype) if any_grad else None
            start += n
        return flat[-1]

    def _sum_sparse(self, p: torch.Tensor) -> torch.Tensor | None:
        """Sum of the ranks' row-sparse gradients of table p [R, D] (None if no rank has one)."""
        g = p.grad.coalesce() if p.grad is not None else None
        rows = g.indices()[0] if g is not None else torch.empty(0, dtype=torch.int64, device=p.device)
        values = g.values() if g is not None else torch.empty(0, *p.shape[1:], device=p.device, dtype=p.dtype)
        rows = self._gather_ragged(rows)
        if len(rows) == 0:
            return None
        values = self._gather_ragged(values)
        summed = torch.sparse_coo_tensor(rows[None], values, p.shape, check_invariants=True)
        return summed.coalesce()  # a row several ranks touched: their gradients summed

    def _gather_ragged(self, x: torch.Tensor) -> torch.Tensor:
        """Every rank's x [n_r, ...] concatenated in rank order (n_r may differ)."""
        size = torch.tensor([len(x)], device=self.device)
        sizes = [torch.empty_like(size) for _ in range(self.world)]
        dist.all_gather(sizes, size)
        counts = [int(s) for s in sizes]
        if max(counts) == 0:  # every rank knows: skip a collective of empty tensors
            return x[:0]
        padded = torch.zeros(max(counts), *x.shape[1:], dtype=x.dtype, device=self.device)
        padded[:len(x)] = x.to(self.device)
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(parts, padded)
        return torch.cat([part[:c] for part, c in zip(parts, counts, strict=True)]).to(x.device)

    def evaluate(self, scorer: Scorer, split: Split, stage: str, cfg: EvalConfig) -> list[dict]:
        """`pipeline.evaluate.evaluate` over all ranks (a collective): the users it scores
        (all, or cfg.user_sample's) are cut into contiguous shards, each rank ranks its own,
        rank 0 computes the rows once over all of them and every rank gets those rows, so
        all take the same early-stopping decisions."""
        chosen = sample_users(split.n_users, cfg)  # None: every user
        everyone = np.arange(split.n_users) if chosen is None else chosen
        mine = everyone[row_slice(len(everyone), self.rank, self.world)]
        local = rank_users(scorer, split, stage, cfg, users=mine)
        ranks = {protocol: self.gather_users(r, len(everyone)) for protocol, r in local.items()}
        rows = metric_rows(ranks, split, stage, cfg, users=chosen) if self.is_lead else None
        box = [rows]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather_users(self, values: np.ndarray, n_users: int) -> np.ndarray:
        """Per-user values of this rank's shard -> [n_users] (the contiguous shards
        concatenated in rank order: the users' order)."""
        out = self._gather_ragged(torch.as_tensor(values, dtype=torch.int64)).cpu().numpy()
        if len(out) != n_users:  # every user exactly once, or the metrics are wrong
            raise RuntimeError(f"gathered {len(out)} users' ranks, expected {n_users}")
        return out

    def info(self, seed: int) -> dict:
        return run_info(seed, self.world, self.backend)


# ---- the launcher --------------------------------------------------------------------------


def backend_for(device: torch.device, nproc: int) -> str:
    """gloo on CPU, NCCL on CUDA (one GPU per rank; NCCL refuses two ranks on one GPU)."""
    if device.type != "cuda":
        return "gloo"
    have = torch.cuda.device_count()
    if nproc > have:
        raise InputError(f"nproc={nproc} on CUDA needs {nproc} GPUs, this machine has {have}; "
                         f"use --nproc {have} or --set device=cpu")
    return "nccl"


def launch(target: Callable[..., Any], args: tuple, nproc: int, device: torch.device,
           threads: int | None = None) -> Any:
    """Run `target(team, *args)` in `nproc` spawned processes; rank 0's return value.

    `target` must be a module-level function and `args` picklable; every rank unpickles
    its own copy (plain pickle: no tensor memory is shared between ranks, so one rank's
    optimiser step cannot write into another's weights). `threads`: torch intra-op
    threads per rank (default: this process's share, so N ranks do not oversubscribe).
    A rank that raises or dies stops the others; its exception is re-raised here (a death
    by signal as RankFailedError).
    """
    backend = backend_for(device, nproc)
    try:
        payload = pickle.dumps((target, args))
    except (pickle.PicklingError, AttributeError, TypeError) as e:
        raise TypeError(f"nproc={nproc}: the training inputs must pickle to the worker "
                        f"processes (a lambda or closure does not): {e}") from None
    threads = threads or max(1, torch.get_num_threads() // nproc)
    ctx = mp.get_context("spawn")
    store = dist.TCPStore(HOST, 0, None, True, timeout=COLLECTIVE_TIMEOUT)  # port chosen by the OS
    level = logging.getLogger().getEffectiveLevel()
    procs, conns = [], []
    try:
        for rank in range(nproc):
            recv, send = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_rank_main, name=f"llm4srs-rank{rank}", daemon=True,
                            args=(rank, nproc, store.port, backend, payload, send, os.getpid(),
                                  threads, level))
            p.start()
            send.close()  # the child holds the writing end; EOF here once it exits
            procs.append(p)
            conns.append(recv)
        return _supervise(procs, conns)
    finally:
        _stop(procs)
        del store


def _supervise(procs: list, conns: list[Connection]) -> Any:
    """Wait for every rank; on the first failure stop the rest and raise it."""
    messages: dict[int, tuple] = {}
    open_conns = dict(enumerate(conns))
    running = dict(enumerate(procs))
    while running:
        ready = set(wait([*open_conns.values(), *(p.sentinel for p in running.values())]))
        for rank in [r for r, c in open_conns.items() if c in ready]:
            with contextlib.suppress(EOFError):  # EOF: it exited without a word (a signal)
                messages[rank] = pickle.loads(open_conns[rank].recv_bytes())
            del open_conns[rank]
        for rank in [r for r, p in running.items() if p.sentinel in ready]:
            running.pop(rank).join()
        failure = _first_failure(procs, messages)
        if failure is not None:
            _stop(procs)
            raise failure
    if 0 not in messages:
        raise RankFailedError(f"training rank 0 of {len(procs)} ended without a result")
    return messages[0][1]


def _first_failure(procs: list, messages: dict[int, tuple]) -> BaseException | None:
    """The cause, if a rank failed: a rank killed by a signal first (its peers then only
    saw it vanish), then a rank's own exception (one not about a lost peer first), then a
    silent non-zero exit. Called before any rank is stopped, so every death is genuine."""
    n = len(procs)
    codes = {r: p.exitcode for r, p in enumerate(procs)}
    for rank, code in codes.items():
        if code is not None and code < 0:
            return RankFailedError(_death_message(rank, n, code))
    errors = sorted((isinstance(m[1], dist.DistError), rank) for rank, m in messages.items()
                    if m[0] == "error")
    if errors:
        rank = errors[0][1]
        _, exc, remote_tb = messages[rank]
        if not isinstance(exc, BaseException):
            return RankFailedError(f"training rank {rank} of {n} failed:\n{remote_tb}")
        if not isinstance(exc, InputError):  # a bug: keep where it happened
            exc.add_note(f"raised on training rank {rank} of {n}:\n{remote_tb}")
        return exc
    for rank, code in codes.items():
        if code not in (None, 0):
            return RankFailedError(_death_message(rank, n, code))
    return None


def _death_message(rank: int, n: int, code: int) -> str:
    how = f"exited with code {code}"
    if code < 0:
        with contextlib.suppress(ValueError):
            how = f"was killed by {signal.Signals(-code).name}"
    return (f"training rank {rank} of {n} {how}; the other ranks were stopped. The last "
            "completed epoch is in the run's last.pt: run again with --resume to continue")


def _stop(procs: list) -> None:
    """SIGTERM every live rank, then SIGKILL what is left after STOP_GRACE_S."""
    live = [p for p in procs if p.is_alive()]
    for p in live:
        p.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for p in live:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join()


# ---- inside a rank ---------------------------------------------------------------------------


def _rank_main(rank: int, world: int, port: int, backend: str, payload: bytes, conn: Connection,
               parent: int, threads: int, level: int) -> None:
    """A spawned rank: join the group, run the target, send back (kind, value, traceback)."""
    _exit_with_parent(parent)
    logging.basicConfig(level=level, format=f"%(levelname)s [rank {rank}] %(name)s: %(message)s")
    torch.set_num_threads(threads)
    try:
        target, args = pickle.loads(payload)
        team = _join(rank, world, port, backend)
        value = target(team, *args)
        dist.destroy_process_group()
        _send(conn, ("ok", value if rank == 0 else None, ""))
    except BaseException as exc:  # everything goes back to the launcher
        remote = traceback.format_exc()
        try:
            pickle.loads(pickle.dumps(exc))
            _send(conn, ("error", exc, remote))
        except Exception:  # an exception that does not pickle: its text
            _send(conn, ("error", None, remote))
        sys.stderr.flush()
        os._exit(1)  # no teardown: peers may be blocked in a collective


def _send(conn: Connection, message: tuple) -> None:
    """Plain pickle, not multiprocessing's: a tensor in the message is copied, not handed
    over as shared memory that dies with this process."""
    conn.send_bytes(pickle.dumps(message))


def _join(rank: int, world: int, port: int, backend: str) -> Team:
    device = torch.device("cpu")
    if backend == "nccl":
        device = torch.device("cuda", rank)
        torch.cuda.set_device(device)
    store = dist.TCPStore(HOST, port, None, False, timeout=COLLECTIVE_TIMEOUT)
    dist.init_process_group(backend, store=store, rank=rank, world_size=world,
                            timeout=COLLECTIVE_TIMEOUT)
    return Team(rank=rank, world=world, backend=backend, device=device)


def _exit_with_parent(parent: int) -> None:
    """A rank whose launcher is gone (SIGKILLed) exits instead of training on unwatched."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="llm4srs-parent-watch", daemon=True).start()
