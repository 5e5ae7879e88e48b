"""Shared fixtures: a small synthetic dataset prepared once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory: pytest.TempPathFactory):
    from pipeline.data.config import DataConfig
    from pipeline.data.prepare import prepare_dataset

    cfg = DataConfig(source="synthetic", synthetic={"users": 200, "items": 500, "seed": 0})
    return prepare_dataset(cfg, tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def synthetic_split(synthetic_dataset):
    from pipeline.split import leave_one_out

    return leave_one_out(synthetic_dataset)


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` run only where CUDA is present (`make test-gpu` on a GPU box)."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
