"""Network forward passes on preprocessed arrays: the part training validation and inference share.

Input here is already normalised (see ``preprocess``); output is per-channel sigmoid probability on
the same grid. Volumes go through MONAI's ``sliding_window_inference`` with Gaussian blending so
that any size works with a fixed memory footprint; LGG slices go through in batches.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from monai.inferers import sliding_window_inference

from .device import autocast

ProgressFn = Callable[[int, int], None]  # (done, total)


def _flip_axes(spatial_dims: int) -> list[tuple[int, ...]]:
    """Flip test-time augmentation: identity plus one flip per spatial axis (tensor dims from 2)."""
    return [()] + [(2 + d,) for d in range(spatial_dims)]


@torch.no_grad()
def predict_slices(
    net: torch.nn.Module,
    slices: np.ndarray,
    device: torch.device,
    *,
    batch_size: int = 16,
    tta: bool = False,
    amp: bool = True,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """(Z, C, H, W) normalised slices -> (Z, K, H, W) float32 probabilities."""
    flips = _flip_axes(2) if tta else [()]
    out = np.empty((slices.shape[0], _out_channels(net), *slices.shape[2:]), dtype=np.float32)
    total = int(np.ceil(slices.shape[0] / batch_size))
    if progress is not None:
        progress(0, total)  # the total is known before the first step: a determinate bar from the start
    for step, start in enumerate(range(0, slices.shape[0], batch_size)):
        if should_stop is not None and should_stop():
            raise InterruptedError("cancelled")
        x = torch.from_numpy(np.ascontiguousarray(slices[start : start + batch_size])).to(device)
        prob = torch.zeros((x.shape[0], out.shape[1], *x.shape[2:]), device=device)
        for axes in flips:
            xi = torch.flip(x, axes) if axes else x
            with autocast(device, amp):
                logits = net(_pad_to_multiple(xi, 16)).float()
            logits = logits[..., : x.shape[2], : x.shape[3]]
            prob += torch.sigmoid(torch.flip(logits, axes) if axes else logits)
        out[start : start + x.shape[0]] = (prob / len(flips)).cpu().numpy()
        if progress is not None:
            progress(step + 1, total)
    return out


@torch.no_grad()
def predict_volume(
    net: torch.nn.Module,
    volume: np.ndarray,
    device: torch.device,
    roi_size: tuple[int, ...],
    *,
    sw_batch_size: int = 2,
    overlap: float = 0.25,
    tta: bool = False,
    amp: bool = True,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """(C, z, y, x) normalised volume -> (K, z, y, x) float32 probabilities (Gaussian-blended windows)."""
    flips = _flip_axes(3) if tta else [()]
    x = torch.from_numpy(np.ascontiguousarray(volume[None])).to(device)
    # a volume smaller than the window is padded by sliding_window_inference itself
    n_windows = _count_windows(volume.shape[1:], roi_size, overlap, sw_batch_size)
    total = n_windows * len(flips)
    done = [0]
    if progress is not None:
        progress(0, total)  # the total is known before the first window: a determinate bar from the start

    def forward(patch: torch.Tensor) -> torch.Tensor:
        if should_stop is not None and should_stop():
            raise InterruptedError("cancelled")
        with autocast(device, amp):
            logits = net(patch).float()
        done[0] += 1
        if progress is not None:
            progress(min(done[0], total), total)
        return logits

    prob = None
    for axes in flips:
        xi = torch.flip(x, axes) if axes else x
        # blended where the network runs: on a GPU, one copy of the result to the host instead of one per window
        logits = sliding_window_inference(
            xi, roi_size, sw_batch_size, forward, overlap=overlap, mode="gaussian", sw_device=device, device=device
        )
        p = torch.sigmoid(torch.flip(logits, axes) if axes else logits)
        prob = p if prob is None else prob + p
    return (prob / len(flips))[0].cpu().numpy().astype(np.float32, copy=False)


def _out_channels(net: torch.nn.Module) -> int:
    return int(getattr(net, "out_channels", 1))


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad H, W up to a multiple of the U-Net's total stride (cropped back by the caller)."""
    pad_h = (-x.shape[2]) % multiple
    pad_w = (-x.shape[3]) % multiple
    if pad_h or pad_w:
        x = torch.nn.functional.pad(x, (0, pad_w, 0, pad_h))
    return x


def _count_windows(shape, roi_size, overlap: float, sw_batch_size: int) -> int:
    """Number of network calls sliding_window_inference makes (for the progress bar)."""
    from monai.data.utils import dense_patch_slices

    padded = tuple(max(s, r) for s, r in zip(shape, roi_size))
    scan = tuple(r if r == p else max(1, int(r * (1 - overlap))) for r, p in zip(roi_size, padded))
    roi = tuple(roi_size)
    n = len(dense_patch_slices(padded, roi, scan))
    return int(np.ceil(n / sw_batch_size))
