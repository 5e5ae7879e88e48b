"""Loading backbones from folders, sentence-transformers folders and files; bad inputs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from pipeline.llm import LLMSpec, ModelLoadError, TextEncoder, load_model, resolve_source
from pipeline.llm.hashing import file_sha256


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg and msg
    return msg


def test_loads_causal_folder(tiny_llama, tiny_llama_dir: Path) -> None:
    assert tiny_llama.source.format == "hf" and tiny_llama.source.kind == "causal"
    assert type(tiny_llama.model).__name__ == "LlamaModel"  # no vocabulary head for encoding
    assert tiny_llama.hidden_size == 32 and tiny_llama.pooling == "mean"
    expected = hashlib.sha256((tiny_llama_dir / "model.safetensors").read_bytes()).hexdigest()
    assert tiny_llama.weights_hash == expected
    assert tiny_llama.describe()["weights_sha256"] == expected


def test_lm_head_and_kind_override(tiny_llama_dir: Path, tmp_path: Path) -> None:
    spec = LLMSpec(source=str(tiny_llama_dir), dtype="fp32", device="cpu")
    full = load_model(spec, tmp_path, lm_head=True)
    assert type(full.model).__name__ == "LlamaForCausalLM"
    as_encoder = LLMSpec(source=str(tiny_llama_dir), kind="encoder")
    with pytest.raises(ModelLoadError):
        load_model(as_encoder, tmp_path, lm_head=True)


def test_sentence_transformers_folder(tiny_st_dir: Path, tmp_path: Path) -> None:
    loaded = load_model(LLMSpec(source=str(tiny_st_dir), dtype="fp32", device="cpu"), tmp_path)
    assert loaded.source.format == "st" and loaded.source.kind == "encoder"
    assert loaded.pooling == "cls"  # from 1_Pooling/config.json
    assert loaded.max_length == 12  # sentence_bert_config.json caps the spec's 256
    vecs = TextEncoder(loaded, progress=False).encode(["star wars", "the lazy dog"])
    assert vecs.shape == (2, 16) and vecs.dtype == np.float32


def test_auto_dtype_and_device(tiny_llama_dir: Path, tmp_path: Path) -> None:
    from pipeline.llm.hardware import cpu_has_native_bf16

    loaded = load_model(LLMSpec(source=str(tiny_llama_dir), device="cpu"), tmp_path)
    expected = "bfloat16" if cpu_has_native_bf16() else "float32"
    assert str(loaded.dtype) == f"torch.{expected}"
    assert next(loaded.model.parameters()).dtype == loaded.dtype


@pytest.mark.parametrize("source", ["/no/such/model", "./no-such-model", "missing/model.gguf"])
def test_missing_path_is_one_line(source: str) -> None:
    with pytest.raises(ModelLoadError) as err:
        LLMSpec(source=source)
    assert source in _one_line(err)


def test_bad_spec_values_are_one_line() -> None:
    with pytest.raises(ModelLoadError) as err:
        LLMSpec(batch_size=0)
    assert "batch_size" in _one_line(err)


def test_hub_id_not_cached_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelLoadError) as err:
        resolve_source(LLMSpec(source="nobody-here/no-model"))
    assert "nobody-here/no-model" in _one_line(err)


def test_folder_without_config(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError) as err:
        load_model(LLMSpec(source=str(tmp_path / "empty")), tmp_path / "cache")
    assert "config.json" in _one_line(err)


def test_unsupported_gguf_architecture(tmp_path: Path) -> None:
    import gguf

    path = tmp_path / "odd.gguf"
    w = gguf.GGUFWriter(str(path), "notamodel")
    w.add_name("odd")
    w.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    cache = tmp_path / "cache"
    with pytest.raises(ModelLoadError) as err:
        load_model(LLMSpec(source=str(path)), cache)
    msg = _one_line(err)
    assert "notamodel" in msg and str(path) in msg
    assert not any((cache / "models").iterdir())  # nothing half-converted is left


def test_not_a_gguf_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.gguf"
    path.write_text("not a gguf")
    with pytest.raises(ModelLoadError) as err:
        load_model(LLMSpec(source=str(path)), tmp_path / "cache")
    assert "junk.gguf" in _one_line(err)


def test_file_hash_cache(tmp_path: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"abc" * 1000)
    cache = tmp_path / "hashes.json"
    first = file_sha256(f, cache)
    assert first == hashlib.sha256(b"abc" * 1000).hexdigest() and cache.is_file()
    assert file_sha256(f, cache) == first
    f.write_bytes(b"changed")  # new size/mtime -> new key, hashed again
    assert file_sha256(f, cache) == hashlib.sha256(b"changed").hexdigest()
