"""Content hashes of weight files, for manifests and cache keys.

Hashing a 100-300 MB file costs about a second on a loaded core, and every load needs it,
so results are kept in a small JSON file beside the converted models, keyed by
(path, size, mtime): a file that changes gets a new key and is hashed again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from embeddings_store.atomic import atomic_write_text

WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "model*.bin")


def _key(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def file_sha256(path: Path, cache_file: Path | None = None) -> str:
    """Hex sha256 of one file, remembered in `cache_file` (JSON) when one is given."""
    path = Path(path)
    key = _key(path)
    known: dict[str, str] = {}
    if cache_file is not None and cache_file.is_file():
        try:
            known = json.loads(cache_file.read_text())
        except (OSError, ValueError):
            known = {}  # a damaged cache only costs a re-hash
    if key in known:
        return known[key]
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    digest = h.hexdigest()
    if cache_file is not None:
        known[key] = digest
        _write_json_atomic(cache_file, known)
    return digest


def files_sha256(paths: list[Path], cache_file: Path | None = None) -> str:
    """One hash over several files: a single file keeps its own sha256, several combine
    (name, sha256) lines in name order, so the result does not depend on listing order."""
    paths = sorted(Path(p) for p in paths)
    if len(paths) == 1:
        return file_sha256(paths[0], cache_file)
    h = hashlib.sha256()
    for p in paths:
        h.update(f"{p.name}\0{file_sha256(p, cache_file)}\n".encode())
    return h.hexdigest()


def weight_files(folder: Path) -> list[Path]:
    """The weight files of a model folder (safetensors preferred, else PyTorch .bin)."""
    found = sorted(folder.glob("*.safetensors"))
    if not found:
        found = sorted({p for pat in WEIGHT_PATTERNS[1:] for p in folder.glob(pat)})
    return found


def _write_json_atomic(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=0, sort_keys=True))
