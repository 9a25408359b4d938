"""Device choice and mixed precision, shared by training and inference.

torch is imported inside the functions: the widget imports this module for ``DEVICES`` when napari
opens the dock, and importing torch there would freeze the viewer for about a second.
"""

from __future__ import annotations

import contextlib
from functools import lru_cache
from typing import TYPE_CHECKING

from ..errors import BrainsegInputError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    import torch

    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BrainsegInputError("device 'cuda' was requested but no CUDA GPU is available; use 'auto' or 'cpu'")
    if name not in DEVICES and not name.startswith("cuda:"):
        raise BrainsegInputError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")
    return torch.device(name)


@lru_cache(maxsize=1)
def cpu_supports_bf16() -> bool:
    """True where the CPU has native bf16 matmul (AMX or AVX512-BF16); elsewhere bf16 is emulated and slow."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = fh.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast on capable CPUs, fp16 on CUDA; a no-op elsewhere."""
    import torch

    if not enabled:
        return contextlib.nullcontext()
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    if device.type == "cpu" and cpu_supports_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()
