"""What the machine can do, asked once, so recipes can say ``bf16: null`` and get the right thing."""

from __future__ import annotations

import functools
import sys


@functools.lru_cache(maxsize=1)
def bf16_native() -> bool:
    """True where bf16 matmuls run natively (CUDA Ampere+, x86 with AVX512-BF16 or AMX)."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as f:
                flags = f.read()
        except OSError:
            return False
        return "avx512_bf16" in flags or "amx_bf16" in flags
    return False


def use_bf16(requested: bool | None) -> bool:
    """A config's ``bf16``: True/False as given, None (the default) for whatever the hardware runs natively."""
    return bf16_native() if requested is None else requested
