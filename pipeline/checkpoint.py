"""Checkpoints as plain dicts of tensors and Python values (`torch.load(weights_only=True)`)."""

from __future__ import annotations

import errno
import os
import pickle
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from embeddings_store.atomic import atomic_path
from pipeline.errors import InputError

MIN_FREE_BYTES = 64 << 20  # less than this left beside a failed write: the disk is full


def save(path: Path, state: dict) -> None:
    """Write aside then rename, so a kill mid-write leaves the previous checkpoint intact.
    A full disk is an OSError naming the file, whatever torch raised (it raises
    RuntimeError from its zip writer)."""
    try:
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
    except RuntimeError as e:
        free = shutil.disk_usage(path.parent).free if path.parent.is_dir() else -1
        code = errno.ENOSPC if 0 <= free < MIN_FREE_BYTES else errno.EIO
        raise OSError(code, f"{os.strerror(code)} while writing a checkpoint "
                            f"({str(e).splitlines()[0]})", str(path)) from None


def load(path: Path, device: torch.device | str = "cpu") -> dict:
    """A checkpoint, or one InputError line naming the file when it is truncated or not a
    checkpoint (a run killed while something else wrote there, a copy cut short)."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(f"checkpoint {path} is unreadable ({why[:160]}); delete it, or run "
                         "without --resume, to start that run over") from None


def rng_state(gen: torch.Generator) -> dict:
    """Every random stream a training step touches."""
    py = random.getstate()
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "generator": gen.get_state(),
        # as tensors and numbers, so weights_only loading needs no numpy globals
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": [py[0], list(py[1]), py[2]],
    }


def set_rng_state(state: dict, gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"].cpu())
    gen.set_state(state["generator"].cpu())
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))
    v, internal, gauss = state["python"]
    random.setstate((v, tuple(internal), gauss))


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen
