"""LLM-ESR's retrieval-augmented self-distillation loss (RASD).

Reference: LLM-ESR (Liu et al., NeurIPS 2024), METHODS.md §3.4. For the batch's users
[B] it runs the same model (training mode) on the first n neighbours' training inputs,
averages their user representations [B, n, D] -> [B, D] *without gradient*, and returns
`weight · MSE(u [B, D], mean_v u_v [B, D])`. Neighbour ids come from
pipeline/methods/llmesr/distill.py (FAISS over a `users/*` store kind).

Three teachers (`llmesr.teacher`):
- `exact`: the neighbours are encoded at every step, in training mode (the paper's form;
  ~n extra forward passes per step).
- `cached`: the target is detached anyway, so every user's representation is encoded once,
  in eval mode, into a [U, D] cache refreshed every `refresh_every` epochs
  (`new_epoch`); a step then only gathers and averages cache rows. One batched pass over the
  users per refresh instead of B·n training forwards per step.
- `running`: the same cache, filled once (eval mode) at the start, then each step writes its
  own rows' student representations (training mode, as the exact teacher's) into it. An
  epoch visits every user, so every row is at most one epoch old, as with `cached`, at no
  extra forward pass. A resumed run refills the cache once, so it is not bit-identical to an
  uninterrupted one (the other teachers resume exactly).
- `validation`: the same cache, whose rows are the user vectors the trainer's validation pass
  computes anyway (eval mode; `observe`, passed to train_srs as `valid_tap`), so the
  teacher costs no forward pass after the first fill. Its input is each user's whole
  training history (validation's), one item more than the other teachers'; the cache is as
  fresh as the last validation, i.e. refreshed every `eval_every` epochs. A resumed run
  refills it once from the restored weights, i.e. with what the last validation computed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from models.sequences import pad_left, window_batches, window_len

if TYPE_CHECKING:
    from models.srs.base import SequentialRecommender


class RASDLoss:
    """`aux_loss(model, batch)` for train_srs: weight · MSE(u, stop_grad(mean of neighbours' u)).

    train: Split.train (row u-1 ↔ user u); neighbours [U, ≥n] user ids (row u-1 ↔ user u).
    A user's input is its training sequence minus the last item (what the next-item batch
    feeds the model, and the paper's neighbour input); a one-item history is used whole.
    """

    def __init__(self, train: list[np.ndarray], neighbours: np.ndarray, n: int, weight: float,
                 max_len: int, chunk: int = 32, teacher: str = "exact",
                 refresh_every: int = 1) -> None:
        if neighbours.shape[0] != len(train):
            raise ValueError(f"neighbour table has {neighbours.shape[0]} rows for {len(train)} users")
        if n > neighbours.shape[1]:
            raise ValueError(f"{n} neighbours asked for, {neighbours.shape[1]} retrieved")
        if neighbours.min() < 1 or neighbours.max() > len(train):
            raise ValueError("neighbour ids must be user ids 1..U")
        # validation: the inputs validation encodes (whole histories), so the first fill
        # and a resumed run's refill match the rows validation writes
        whole = teacher == "validation"
        self.inputs = [s if whole or len(s) < 2 else s[:-1] for s in train]
        self.neighbours = torch.as_tensor(neighbours[:, :n], dtype=torch.int64)  # [U, n]
        self.n, self.weight, self.max_len, self.chunk = n, weight, max_len, chunk
        self.teacher, self.refresh_every = teacher, refresh_every
        self.cache: torch.Tensor | None = None  # [U, D] every user's representation (cached)
        self.epochs = 0

    def new_epoch(self, epoch: int, loss: float) -> None:
        """train_srs's on_epoch_end: the cache goes stale every `refresh_every` epochs. A
        resumed run starts without a cache, so it refreshes at its first step (exactly when
        an uninterrupted run does, for refresh_every=1)."""
        self.epochs += 1
        if self.teacher == "cached" and self.epochs % self.refresh_every == 0:
            self.cache = None

    def sequences(self, users: torch.Tensor, window: bool = True) -> torch.Tensor:
        """users [M] 1-based ids -> their inputs [M, T] left-padded to the window of the
        longest (`window_len`, as validation pads), or with `window=False` only to the
        longest (a training forward); T ≤ max_len."""
        seqs = [self.inputs[u - 1] for u in users.tolist()]
        longest = max(1, min(self.max_len, max(len(s) for s in seqs)))
        return pad_left(seqs, window_len(longest, self.max_len) if window else longest)

    def targets(self, model: SequentialRecommender, users: torch.Tensor) -> torch.Tensor:
        """users [B] -> [B, D] mean fused representation of each user's n neighbours, detached.

        The B·n forward passes dominate LLM-ESR's cost, so a neighbour shared by several
        users of the batch is encoded once (the paper encodes every occurrence, each with
        its own dropout draw), and the passes run in chunks of one padding window each
        (`window_batches`): a chunk is padded to the power of two above its longest history.
        """
        device = next(model.parameters()).device
        nb = self.neighbours[users.cpu() - 1]  # [B, n]
        if self.teacher != "exact":
            if self.cache is None:
                self.cache = self._encode_all(model)
            return self.cache[nb.flatten().to(device) - 1].view(len(users), self.n, -1).mean(1)
        uniq, inverse = torch.unique(nb.flatten(), return_inverse=True)  # [M], [B·n]
        reps = self._encode(model, uniq)  # [M, D]
        return reps[inverse.to(device)].view(len(users), self.n, -1).mean(1)

    def observe(self, users: np.ndarray, vectors: torch.Tensor) -> None:
        """The `validation` teacher's refresh: users [B] 1-based ids, vectors [B, D] their
        eval-mode representations from the trainer's validation pass (train_srs's
        `valid_tap`). Rows of users not in the pass keep their value."""
        if self.cache is None:
            with torch.inference_mode(False):  # validation runs in inference mode
                self.cache = torch.zeros(len(self.inputs), vectors.shape[1], device=vectors.device)
        self.cache[torch.as_tensor(users, device=self.cache.device) - 1] = vectors.detach().float()

    def _encode(self, model: SequentialRecommender, users: torch.Tensor) -> torch.Tensor:
        """users [M] 1-based ids -> [M, D] representations, without gradient, in chunks of
        one padding window each (models.sequences.window_batches, as validation batches)."""
        device = next(model.parameters()).device
        lengths = np.array([len(self.inputs[u - 1]) for u in users.tolist()])
        batches = window_batches(lengths, self.chunk)
        with torch.no_grad():
            parts = [model(self.sequences(users[pos]).to(device)).float()
                     for pos in batches]  # each [≤chunk, D]
        reps = torch.empty(len(users), parts[0].shape[1], device=device)
        reps[torch.from_numpy(np.concatenate(batches)).to(device)] = torch.cat(parts)
        return reps  # [M, D] in `users` order

    def _encode_all(self, model: SequentialRecommender) -> torch.Tensor:
        """[U, D] every user's representation in eval mode (no dropout: no RNG drawn, so
        the training streams are the same with or without the cache)."""
        was_training = model.training
        model.eval()
        try:
            return self._encode(model, torch.arange(1, len(self.inputs) + 1))
        finally:
            model.train(was_training)

    def __call__(self, model: SequentialRecommender, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        users = batch["user"]  # [B]
        # The recommendation loss's own pass when the model kept it (LLM-ESR, next-item
        # batches: input = history but the last item); otherwise one more forward.
        take = getattr(model, "take_user", None)
        student = take() if take is not None else None  # [B, D], with gradient
        if student is None or len(student) != len(users):
            device = next(model.parameters()).device
            student = model(self.sequences(users, window=False).to(device))
        target = self.targets(model, users)  # [B, D], before this step's rows are written
        if self.teacher == "running":
            self.cache[users.to(self.cache.device) - 1] = student.detach().float()
        return self.weight * F.mse_loss(student.float(), target)
