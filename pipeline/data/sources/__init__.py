"""Source loaders: each turns files in its real format into a RawData.

A loader is `load(cfg: DataConfig, cache_dir: Path) -> RawData`. It validates its input
(missing files, missing columns, undecodable rows) with one-line InputErrors and counts
rows it skips in RawData.counts.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from pipeline.data.config import DataConfig
from pipeline.data.raw import RawData
from pipeline.errors import InputError

# source name -> module under pipeline.data.sources providing `load`
LOADERS: dict[str, str] = {
    "movielens-100k": "movielens100k",
    "movielens-1m": "movielens1m",
    "amazon": "amazon",
    "yelp": "yelp",
    "lcrec": "lcrec",
    "table": "table",
    "synthetic": "synthetic",
}


def load_raw(cfg: DataConfig, cache_dir: Path) -> RawData:
    if cfg.path is not None and not cfg.path.exists():
        raise InputError(f"{cfg.source}: {cfg.path} does not exist")
    module = importlib.import_module(f"{__name__}.{LOADERS[cfg.source]}")
    return module.load(cfg, cache_dir)
