"""Checkpoints as plain dicts of tensors and Python values (`torch.load(weights_only=True)`)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from embeddings_store.atomic import atomic_path


def save(path: Path, state: dict) -> None:
    """Write aside then rename, so a kill mid-write leaves the previous checkpoint intact."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load(path: Path, device: torch.device | str = "cpu") -> dict:
    return torch.load(path, map_location=device, weights_only=True)


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
