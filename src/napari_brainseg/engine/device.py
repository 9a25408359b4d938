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


def autocast_dtype(device: torch.device):
    """The reduced precision networks run in on ``device``: bf16 where the hardware has it, else
    None (fp32). Never fp16: the bundled networks were trained under bf16 autocast, whose range is
    fp32's, and brats-unet3d's decoder overflows fp16 to inf on real cases (empty labels; measured
    in benchmarks/results/gpu_check_fp16.json on an H200, precision_check.json on the CPU)."""
    import torch

    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu" and cpu_supports_bf16():
        return torch.bfloat16
    return None


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast where the device has native bf16 (capable CPUs, CUDA GPUs since Ampere); a
    no-op (fp32) elsewhere. Shared by training and inference."""
    import torch

    dtype = autocast_dtype(device) if enabled else None
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)
