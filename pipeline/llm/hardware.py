"""What the machine can do fast; shared by the LLM loaders and the SRS trainer."""

from __future__ import annotations

from pathlib import Path

import torch


def cpu_has_native_bf16() -> bool:
    """bf16 is ~1.9x faster than fp32 only where the CPU has bf16 instructions; elsewhere it
    is emulated and slower, so `auto` keeps fp32 there."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags for f in (" avx512_bf16", " amx_bf16"))


def bf16_is_fast(device: torch.device) -> bool:
    """CUDA GPUs with bf16 support, or CPUs with native bf16 instructions."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return cpu_has_native_bf16()
