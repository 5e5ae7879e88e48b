"""Load a causal LM or a text encoder from any resolved source, on the best device.

GGUF files are dequantised once into a cached bf16 safetensors folder (the GGUF-loaded
model cannot be saved or trained as it is, and dequantising costs ~25 s per load, against
~2 s for the folder; ../shared/STACK.md). Later loads, LoRA and training read that folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from pipeline.llm.errors import ModelLoadError
from pipeline.llm.gguf_header import check_gguf, read_architecture
from pipeline.llm.hardware import cpu_has_native_bf16
from pipeline.llm.hashing import file_sha256, files_sha256, weight_files
from pipeline.llm.sources import ResolvedSource, resolve_source
from pipeline.llm.spec import LLMSpec, safe_name

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
SOURCE_NOTE = "llm4srs-source.json"  # written beside a converted GGUF: what it came from


@dataclass
class LoadedModel:
    """A model ready to encode or fine-tune, with what a manifest needs to name it."""

    model: PreTrainedModel  # in eval mode, on `device`, in `dtype`
    tokenizer: PreTrainedTokenizerBase
    spec: LLMSpec
    source: ResolvedSource
    device: torch.device
    dtype: torch.dtype
    pooling: str  # mean | last | cls
    max_length: int
    weights_hash: str  # sha256 of the GGUF, or of the folder's weight files
    folder: Path  # the folder the weights were read from (a GGUF's converted cache)

    @property
    def model_id(self) -> str:
        return self.source.model_id

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    def describe(self) -> dict:
        """JSON-ready facts for a manifest's producer section."""
        return {
            "model_id": self.model_id, "name": self.spec.short_name, "format": self.source.format,
            "kind": self.source.kind, "weights_sha256": self.weights_hash,
            "dtype": str(self.dtype).removeprefix("torch."), "device": self.device.type,
            "pooling": self.pooling, "max_length": self.max_length,
            "hidden_size": self.hidden_size, "spec": self.spec.model_dump(mode="json"),
        }


def default_cache_dir() -> Path:
    """LLM4SRS_CACHE_DIR, else ~/.cache/llm4srs (converted models and file hashes)."""
    return Path(os.environ.get("LLM4SRS_CACHE_DIR", "~/.cache/llm4srs")).expanduser()


def resolve_device(spec: LLMSpec) -> torch.device:
    if spec.device == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("device cuda was asked for but torch sees no CUDA device")
    if spec.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec.device)


def resolve_dtype(spec: LLMSpec, device: torch.device) -> torch.dtype:
    if spec.dtype != "auto":
        return DTYPES[spec.dtype]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_native_bf16() else torch.float32


def _gguf_architecture(path: Path) -> str:
    """general.architecture of a GGUF file, from its header (milliseconds; GGUFReader
    parses every tensor record first, ~8 s for SmolLM2); proves the file is a GGUF."""
    return read_architecture(path)


def check_source(spec: LLMSpec) -> ResolvedSource:
    """What can be checked about `spec` without loading weights: the source resolves
    (path, packaged name, or HF id in the local cache) and a GGUF has a header and an
    architecture transformers supports. The CLI calls it before any flow starts."""
    src = resolve_source(spec)
    if src.format == "gguf":
        assert src.gguf_file is not None
        check_gguf(src.gguf_file)
    return src


def convert_gguf(gguf: Path, name: str, cache_dir: Path, gguf_hash: str,
                 arch: str | None = None) -> Path:
    """Dequantise `gguf` once into `<cache>/models/<name>-<hash8>` (bf16 safetensors + tokenizer).

    Written into a temporary sibling and renamed, so a killed conversion leaves nothing
    half-written and two processes converting at once both end with one complete folder.
    """
    target = cache_dir / "models" / f"{safe_name(name)}-{gguf_hash[:8]}"
    if (target / SOURCE_NOTE).is_file():
        return target
    arch = arch or _gguf_architecture(gguf)
    target.parent.mkdir(parents=True, exist_ok=True)
    check_gguf(gguf, arch)  # an unsupported architecture fails here, before any writing
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache may be shared
    try:
        kwargs: dict = {"gguf_file": gguf.name}
        try:
            from transformers import GgufConfig  # transformers >= 5.2x keeps blocks packed

            kwargs["quantization_config"] = GgufConfig(dequantize=True)
        except ImportError:
            pass
        try:
            tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, dtype=torch.bfloat16, **kwargs)
        except Exception as err:
            line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ModelLoadError(
                f"GGUF {gguf} (architecture {arch!r}) cannot be loaded by transformers: {line}"
            ) from None
        if getattr(model, "hf_quantizer", None) is not None:
            model.hf_quantizer.remove_quantization_config(model)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        note = {"gguf": str(gguf), "sha256": gguf_hash, "architecture": arch, "dtype": "bfloat16"}
        (tmp / SOURCE_NOTE).write_text(json.dumps(note, indent=1))
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / SOURCE_NOTE).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone after a rename; removed after a failure
    return target


def load_model(spec: LLMSpec, cache_dir: Path | None = None, lm_head: bool = False) -> LoadedModel:
    """Load `spec` for encoding (`lm_head=False`: the bare transformer) or for causal-LM
    training/generation (`lm_head=True`, causal models only)."""
    cache_dir = cache_dir or default_cache_dir()
    hashes = cache_dir / "hashes.json"
    src = resolve_source(spec)
    device = resolve_device(spec)
    dtype = resolve_dtype(spec, device)
    if src.format == "gguf":
        assert src.gguf_file is not None
        arch = _gguf_architecture(src.gguf_file)  # cheap; rejects a non-GGUF before hashing
        weights_hash = file_sha256(src.gguf_file, hashes)
        name = spec.short_name if spec.source == "smollm2" else src.gguf_file.stem
        folder = convert_gguf(src.gguf_file, name, cache_dir, weights_hash, arch)
    else:
        folder = src.folder
        files = weight_files(folder)
        if not files:
            raise ModelLoadError(f"model folder {folder} has no weight files")
        weights_hash = files_sha256(files, hashes)
    if lm_head and src.kind != "causal":
        raise ModelLoadError(f"model {src.model_id} is an encoder; it has no LM head")
    cls = AutoModelForCausalLM if lm_head else AutoModel
    try:
        tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = cls.from_pretrained(folder, dtype=dtype, local_files_only=True)
    except (OSError, ValueError, KeyError) as err:
        line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelLoadError(f"cannot load model {src.model_id} from {folder}: {line}") from None
    if tok.pad_token is None:
        # Causal LMs often ship without a pad token; any id works because pads are masked.
        if tok.eos_token is None and tok.unk_token is None:
            raise ModelLoadError(f"tokenizer of {src.model_id} has no pad, eos or unk token")
        tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
    model.to(device).eval()
    pooling = spec.pooling or src.st_pooling or "mean"
    max_length = min(spec.max_length, src.st_max_length or spec.max_length)
    return LoadedModel(model, tok, spec, src, device, dtype, pooling, max_length, weights_hash, folder)
