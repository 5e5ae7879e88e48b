"""The manifest: everything needed to trust, reproduce and reuse one embedding version.

Two models: :class:`ManifestInput` is what a producer states (fingerprint, producer,
lineage, metric, ...); :class:`Manifest` is what the store writes, adding the facts it
measured itself (count, dim, files and their checksums, index, timestamps). Keeping them
apart means a producer cannot claim a count or a checksum: the store computes those.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from embeddings_store.errors import StoreError

# Bump when the on-disk layout or a field's meaning changes; readers refuse newer versions
# rather than misreading them.
SCHEMA_VERSION = 1

Metric = Literal["ip", "cosine", "l2"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Producer(_Frozen):
    """What made the vectors; enough to rebuild them (model + adapter hashes, prompt, config)."""

    generator: str
    model_id: str | None = None
    model_file_hash: str | None = None
    adapter_hash: str | None = None
    prompt_template: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)


class Parent(_Frozen):
    """One upstream version this one was derived from (lineage)."""

    kind: str
    version: str
    dataset: str | None = None


class ManifestInput(_Frozen):
    """What the producer of a version declares; the store adds what it measures."""

    dataset_fingerprint: str
    producer: Producer
    metric: Metric = "cosine"
    normalized: bool = False
    centered: bool = False
    # The catalogue mean subtracted before writing (raw LLM states are anisotropic), [D].
    mean: list[float] | None = None
    parents: list[Parent] = Field(default_factory=list)
    metrics: dict[str, Any] = Field(default_factory=dict)
    code_version: str | None = None

    @model_validator(mode="after")
    def _mean_needs_centered(self) -> ManifestInput:
        if self.mean is not None and not self.centered:
            raise ValueError("mean is given but centered is false")
        return self


class DatasetInfo(_Frozen):
    name: str
    fingerprint: str


class FileInfo(_Frozen):
    sha256: str
    size: int


class PartInfo(_Frozen):
    file: str
    rows: int


class IndexInfo(_Frozen):
    """The FAISS index stored beside the vectors; ``params`` holds search-time knobs too."""

    file: str = "index.faiss"
    type: str
    factory: str
    metric: Metric
    ntotal: int
    params: dict[str, Any] = Field(default_factory=dict)
    build_s: float = 0.0
    gpu: bool = False


class Manifest(_Frozen):
    """The full ``manifest.json`` of one immutable version."""

    schema_version: int = SCHEMA_VERSION
    version: str
    dataset: DatasetInfo
    entity: str
    kind: str
    dim: int
    count: int
    dtype: Literal["float32"] = "float32"
    normalized: bool
    metric: Metric
    centered: bool
    mean: list[float] | None
    producer: Producer
    parents: list[Parent]
    created_at: str
    code_version: str
    metrics: dict[str, Any]
    parts: list[PartInfo]
    files: dict[str, FileInfo]
    index: IndexInfo | None = None
    # Rows removed by nan_policy="drop": how many, and a few of their ids for the record.
    dropped_count: int = 0
    dropped_ids_sample: list[int] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        if sum(p.rows for p in self.parts) != self.count:
            raise ValueError(
                f"parts hold {sum(p.rows for p in self.parts)} rows, count is {self.count}"
            )
        if self.mean is not None and len(self.mean) != self.dim:
            raise ValueError(f"mean has {len(self.mean)} values, dim is {self.dim}")
        return self


def load_manifest(path: Path) -> Manifest:
    """Read and validate ``manifest.json``; a newer schema is refused, never guessed at."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise StoreError(f"{path}: manifest not found") from e
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise StoreError(f"{path}: unreadable manifest ({str(e).splitlines()[0] or type(e).__name__})") from e
    if not isinstance(raw, dict):
        raise StoreError(f"{path}: manifest is not a JSON object")
    version = raw.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise StoreError(f"{path}: schema_version missing or not an integer")
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: manifest schema_version {version} is newer than this code supports "
            f"({SCHEMA_VERSION}); upgrade llm4srs to read it"
        )
    try:
        return Manifest.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"]) or "<root>"
        raise StoreError(f"{path}: invalid manifest field {loc}: {first['msg']}") from e


def manifest_json(manifest: Manifest) -> str:
    """Stable JSON text (sorted keys) so identical manifests hash identically."""
    return json.dumps(manifest.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
