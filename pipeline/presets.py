"""Reading YAML presets and config files: one mapping, or one InputError line naming the file."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.errors import InputError


def read_mapping(path: Path, label: str = "config") -> dict:
    """The YAML file at `path` as a dict ({} when empty).

    A missing file, broken YAML or a top level that is not a mapping is an InputError
    starting with `label` and the path, never a parser traceback.
    """
    if not path.is_file():
        raise InputError(f"{label} {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
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
