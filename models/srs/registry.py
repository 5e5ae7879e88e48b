"""BACKBONES: the one list of sequential-recommender backbones.

A backbone module defines a `SequentialRecommender` subclass and calls
`register_backbone("name", Class)`; configs validate `backbone` against this dict, and the
CLI, the trainer and the comparison read their choices from it. A preset
`configs/srs/<name>.yaml` is optional (the defaults of SRSConfig/TrainConfig otherwise).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from models.srs.base import SequentialRecommender

BACKBONES: dict[str, type[SequentialRecommender]] = {}


def register_backbone(name: str, cls: type[SequentialRecommender]) -> type[SequentialRecommender]:
    """Add (or replace) a backbone under `name`; returns the class."""
    BACKBONES[name] = cls
    return cls


def check_backbone(name: str) -> str:
    """`name` if registered, else ValueError listing the choices (pydantic turns it into
    one validation line)."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose from {', '.join(BACKBONES)}")
    return name
