"""What the machine can do fast: shared by the translation engine and the trainer."""

from __future__ import annotations


def cpu_has_native_bf16() -> bool:
    """True when this CPU multiplies bf16 matrices in hardware (AMX tiles or AVX512-BF16).

    There bf16 matmuls run 2-3x faster than fp32 (oneDNN); elsewhere bf16 is emulated and slower than fp32,
    so "auto" precision settings only choose bf16 on CPUs where this is true.
    """
    import torch

    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)
