"""The size guard, kept free of torch so the widget can check a layer on the main thread instantly."""

from __future__ import annotations

import os

import numpy as np

from .errors import BrainsegInputError

# Largest image (spatial voxels, channels not counted) segmented in one go. A BraTS case is 8.9 M
# voxels; at the default 32 M voxels (e.g. 320^3) the run peaks at a few GB. A larger image (e.g.
# 512 x 512 x 400 = 105 M) is refused before any buffer is allocated. BRAINSEG_MAX_VOXELS overrides.
DEFAULT_MAX_VOXELS = 32 * 1024 * 1024


def max_voxels() -> int:
    value = os.environ.get("BRAINSEG_MAX_VOXELS", "")
    try:
        return int(value) if value.strip() else DEFAULT_MAX_VOXELS
    except ValueError:
        raise BrainsegInputError(f"BRAINSEG_MAX_VOXELS={value!r} is not a whole number of voxels") from None


def check_size(spatial_shape, what: str = "the image") -> None:
    """Refuse an image over :func:`max_voxels` spatial voxels, with one line, before allocating anything."""
    shape = tuple(int(n) for n in spatial_shape)
    count = int(np.prod(shape, dtype=object))
    limit = max_voxels()
    if count > limit:
        raise BrainsegInputError(
            f"{what} is too large to segment: {' x '.join(map(str, shape))} = {count:,} voxels, more than the "
            f"limit of {limit:,} (crop or resample it, or raise BRAINSEG_MAX_VOXELS)"
        )
