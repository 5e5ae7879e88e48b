"""Typed configuration of a dataset: where it comes from and how it is filtered."""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from pipeline.errors import InputError
from pipeline.presets import CONFIG_DIR, read_mapping

if TYPE_CHECKING:
    from pipeline.data.raw import RawData


@dataclass(frozen=True)
class Source:
    """A dataset source: the module whose `load(cfg, cache_dir) -> RawData` reads it, and
    whether it reads files the user brings (then `path` is required)."""

    module: str  # e.g. "pipeline.data.sources.amazon"
    needs_path: bool

    def load(self, cfg: DataConfig, cache_dir: Path) -> RawData:
        """The raw interactions and item text `cfg` names, read by this source's module."""
        if cfg.path is not None and not cfg.path.exists():
            raise InputError(f"{cfg.source}: {cfg.path} does not exist")
        return importlib.import_module(self.module).load(cfg, cache_dir)


# SOURCES: the one list of dataset sources; `register_source` adds one (ARCHITECTURE.md).
SOURCES: dict[str, Source] = {}


def register_source(name: str, module: str, needs_path: bool) -> Source:
    SOURCES[name] = Source(module, needs_path)
    return SOURCES[name]


for _name, _module, _needs_path in (
    ("movielens-100k", "movielens100k", False), ("movielens-1m", "movielens1m", True),
    ("amazon", "amazon", True), ("yelp", "yelp", True), ("lcrec", "lcrec", True),
    ("table", "table", True), ("synthetic", "synthetic", False),
):
    register_source(_name, f"pipeline.data.sources.{_module}", _needs_path)


def _check_source(name: str) -> str:
    if name not in SOURCES:
        raise ValueError(f"unknown source {name!r}; choose from {', '.join(SOURCES)}")
    return name

PRESET_DIR = CONFIG_DIR / "datasets"


class TableColumns(BaseModel):
    """Column mapping of the `table` source (any Parquet/CSV)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    user: str = "user_id"
    item: str = "item_id"
    timestamp: str | None = "timestamp"  # None: file order is time order
    rating: str | None = None
    item_file: Path | None = None  # optional Parquet/CSV of item attributes
    item_key: str = "item_id"  # id column inside item_file
    text: tuple[str, ...] = ()  # attribute columns of item_file; empty = every other column


class DataConfig(BaseModel):
    """Where a dataset comes from and how it is filtered into the prepared contract."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    source: Annotated[str, AfterValidator(_check_source)] = "movielens-100k"
    path: Path | None = None
    name: str | None = None  # defaults to the source name or the file stem
    rating_threshold: float | None = None  # keep ratings >= this (implicit feedback)
    user_core: int = Field(0, ge=0)  # iterative k-core: users with >= user_core items
    item_core: int = Field(0, ge=0)  # … and items with >= item_core users
    min_user_len: int = Field(3, ge=3)  # leave-one-out needs train + valid + test
    dedup: bool = True  # keep the first (user, item) event only (no repeat consumption)
    columns: TableColumns = TableColumns()
    category: str | None = None  # amazon: the category name in the file names
    synthetic: dict[str, int | float] = Field(default_factory=dict)  # synthetic generator args

    @field_validator("path")
    @classmethod
    def _path_resolves(cls, v: Path | None) -> Path | None:
        if v is not None:
            try:
                v.resolve()
            except (RuntimeError, OSError) as e:  # RuntimeError: a symlink loop (Python 3.11)
                raise ValueError(f"{v}: cannot be followed ({e})") from None
        return v

    @field_validator("name")
    @classmethod
    def _name_is_a_folder_name(cls, v: str | None) -> str | None:
        if v is not None and (not v or "/" in v or v.startswith(".")):
            raise ValueError(f"dataset name {v!r} must be a plain folder name")
        return v

    @model_validator(mode="after")
    def _path_when_needed(self) -> DataConfig:
        if SOURCES[self.source].needs_path and self.path is None:
            raise ValueError(f"source {self.source!r} needs a path (use '{self.source}:PATH')")
        from embeddings_store.layout import NAME_RE

        name = self.dataset_name  # also the store's dataset folder: the same rule, checked now
        if not NAME_RE.fullmatch(name):
            origin = ("name" if self.name or self.path is None
                      else f"taken from the file name {self.path.name!r}")
            raise ValueError(f"dataset name {name!r} ({origin}) must be 1-128 letters, digits, "
                             "'.', '_', '+' or '-', starting with a letter or digit; set "
                             "`name:` in a dataset YAML")
        return self

    @property
    def dataset_name(self) -> str:
        if self.name:
            return self.name
        if self.path is not None:
            return self.path.name.split(".")[0] or self.source
        return self.source

    def config_hash(self) -> str:
        """Short content hash of the resolved config (paths made absolute)."""
        payload = self.model_dump(mode="json")
        if self.path is not None:
            payload["path"] = str(self.path.resolve())
        blob = json.dumps(payload, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:10]


def resolve_dataset(spec: str) -> DataConfig:
    """Turn a CLI dataset spec into a DataConfig.

    Accepted: a source name (`movielens-100k`), `source:PATH` (`lcrec:../data/Scientific`),
    a preset name from configs/datasets/ (`amazon-scientific`), or a YAML file path.
    """
    try:
        if spec.endswith((".yaml", ".yml")):
            return _from_yaml(Path(spec))
        preset = PRESET_DIR / f"{spec}.yaml"
        if preset.is_file():
            return _from_yaml(preset)
        source, sep, path = spec.partition(":")
        if sep:
            return DataConfig(source=source, path=Path(path).expanduser())  # type: ignore[arg-type]
        return DataConfig(source=spec)  # type: ignore[arg-type]
    except ValueError as e:
        if isinstance(e, InputError):
            raise
        raise InputError(f"dataset {spec!r}: {_first_error(e)}") from None


def _from_yaml(path: Path) -> DataConfig:
    """A dataset YAML. A relative `path:` inside it is relative to the YAML's own folder, as
    a user expects; the repository's presets (configs/datasets/) are the exception: their
    paths are relative to the checkout (`../shared/data/…`)."""
    data = read_mapping(path, "dataset config")
    if data.get("path") is not None and not Path(data["path"]).expanduser().is_absolute():
        preset = path.resolve().parent == PRESET_DIR.resolve()
        base = PRESET_DIR.parents[1] if preset else path.resolve().parent
        joined = base / Path(data["path"]).expanduser()
        try:
            data["path"] = str(joined.resolve())
        except (RuntimeError, OSError):  # a symlink loop: DataConfig names it in one line
            data["path"] = str(joined)
    return DataConfig(**data)


def _first_error(e: ValueError) -> str:
    errors = getattr(e, "errors", None)
    if callable(errors):
        first = errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        msg = first.get("msg", str(e))
        return f"{loc}: {msg}" if loc else msg
    return str(e).splitlines()[0]
