"""A GGUF file's architecture from its header alone, and whether transformers can load it.

`gguf.GGUFReader` parses every tensor record of the file (~8 s for the 98 MB SmolLM2 GGUF
on a loaded core); the architecture is one of the first key/value pairs, so reading up to
it takes milliseconds. That makes it cheap enough to check a GGUF before any flow starts.
Layout (GGUF v2/v3): magic "GGUF", u32 version, u64 tensor count, u64 key/value count,
then per pair: string key, u32 value type, value; strings are u64 length + UTF-8 bytes.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import BinaryIO

from pipeline.llm.errors import ModelLoadError

_STRING, _ARRAY = 8, 9
# Byte sizes of the scalar value types (GGUFValueType 0..12, string and array excepted).
_SCALAR = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_MAX_STRING = 1 << 20  # a key or architecture name longer than this is a corrupt file


class _Truncated(Exception):
    pass


def _read(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise _Truncated
    return data


def _string(f: BinaryIO, end: str) -> bytes:
    (n,) = struct.unpack(end + "Q", _read(f, 8))
    if n > _MAX_STRING:
        raise _Truncated
    return _read(f, n)


def _skip(f: BinaryIO, vtype: int, end: str) -> None:
    if vtype in _SCALAR:
        f.seek(_SCALAR[vtype], 1)
    elif vtype == _STRING:
        (n,) = struct.unpack(end + "Q", _read(f, 8))
        f.seek(n, 1)
    elif vtype == _ARRAY:
        (etype,) = struct.unpack(end + "I", _read(f, 4))
        (count,) = struct.unpack(end + "Q", _read(f, 8))
        if etype in _SCALAR:
            f.seek(_SCALAR[etype] * count, 1)
        else:
            for _ in range(count):
                _skip(f, etype, end)
    else:
        raise _Truncated


def read_architecture(path: Path) -> str:
    """`general.architecture` of a GGUF file; a one-line ModelLoadError when it is not one."""
    try:
        with open(path, "rb") as f:
            if _read(f, 4) != b"GGUF":
                raise ModelLoadError(f"{path} is not a readable GGUF file (no GGUF magic)")
            raw = _read(f, 4)
            end = "<" if struct.unpack("<I", raw)[0] < 1 << 16 else ">"  # big-endian files exist
            (version,) = struct.unpack(end + "I", raw)
            if version < 2:
                raise ModelLoadError(f"{path} is GGUF version {version}; versions 2 and 3 are read")
            _, n_kv = struct.unpack(end + "QQ", _read(f, 16))
            for _ in range(n_kv):
                key = _string(f, end)
                (vtype,) = struct.unpack(end + "I", _read(f, 4))
                if key == b"general.architecture" and vtype == _STRING:
                    return _string(f, end).decode("utf-8", errors="replace")
                _skip(f, vtype, end)
    except (_Truncated, struct.error):
        raise ModelLoadError(f"{path} is not a readable GGUF file (truncated or corrupt header)") from None
    except OSError as err:
        raise ModelLoadError(f"cannot read GGUF file {path} ({err.strerror or err})") from None
    raise ModelLoadError(f"{path} is not a readable GGUF file (no general.architecture)")


def supported_architectures() -> list[str]:
    """The GGUF architectures this transformers release can dequantise."""
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    return list(GGUF_SUPPORTED_ARCHITECTURES)


def is_supported(arch: str, supported: list[str] | None = None) -> bool:
    """Whether transformers loads `arch`, with the renames its GGUF loader applies
    (llama.cpp writes `qwen2moe`, `gpt-oss`, `t5encoder`, … for its `qwen2_moe`, …)."""
    names = set(supported if supported is not None else supported_architectures())
    a = arch.lower().replace("-", "_")
    a = re.sub(r"(\d)moe$", r"\1_moe", a)
    return arch in names or a in names or ("t5" in a and "t5" in names)


def check_gguf(path: Path, arch: str | None = None) -> str:
    """The architecture of a GGUF that transformers can load; ModelLoadError otherwise."""
    arch = arch or read_architecture(path)
    if not is_supported(arch):
        raise ModelLoadError(
            f"GGUF {path} has architecture {arch!r}, which transformers cannot load "
            f"(supported: {', '.join(a for a in supported_architectures() if a not in ('general', 'tokenizer'))})"
        )
    return arch
