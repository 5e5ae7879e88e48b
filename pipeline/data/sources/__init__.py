"""Source loaders: each turns files in its real format into a RawData.

A loader is a module with `load(cfg: DataConfig, cache_dir: Path) -> RawData`, registered
in pipeline/data/config.py's SOURCES. It validates its input
(missing files, missing columns, undecodable rows) with one-line InputErrors and counts
rows it skips in RawData.counts.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from pipeline.data.config import SOURCES, DataConfig
from pipeline.data.raw import RawData
from pipeline.errors import InputError


def load_raw(cfg: DataConfig, cache_dir: Path) -> RawData:
    if cfg.path is not None and not cfg.path.exists():
        raise InputError(f"{cfg.source}: {cfg.path} does not exist")
    module = importlib.import_module(SOURCES[cfg.source].module)
    return module.load(cfg, cache_dir)
