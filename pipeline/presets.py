"""Reading YAML presets and config files, and validating configs: one mapping or one typed
config, or one InputError line naming the file or setting."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from pipeline.errors import InputError

C = TypeVar("C", bound=BaseModel)
# The repository's YAML presets: srs/<backbone>.yaml, datasets/, compare.yaml, e4srec.yaml.
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def read_mapping(path: Path, label: str = "config") -> dict:
    """The YAML file at `path` as a dict ({} when empty).

    A missing file, broken YAML or a top level that is not a mapping is an InputError
    starting with `label` and the path, never a parser traceback.
    """
    if not path.is_file():
        raise InputError(f"{label} {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except RecursionError:
        raise InputError(f"{label} {path}: nested too deeply to read") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" (line {where.line + 1})" if where is not None else ""
        raise InputError(f"{label} {path}: not valid YAML{at}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{label} {path}: the top level must be a mapping of settings, "
                         f"not a {type(data).__name__}")
    return data


def build_config(cls: type[C], data: dict, overrides: dict | None, label: str) -> C:
    """`data` with `overrides` applied (dotted keys reach into sections), validated as
    `cls`; the first validation error becomes one InputError line prefixed by `label`."""
    for key, value in (overrides or {}).items():
        node = data
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise InputError(f"override {key}: {p} is not a section")
        node[leaf] = value
    try:
        return cls(**data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise InputError(f"{label}: {loc}: {first['msg']}") from None


def validate(cls: type[C], overrides: dict | None, label: str) -> C:
    """`cls` from overrides alone (dotted keys reach into sections); one InputError line."""
    return build_config(cls, {}, overrides, label)
