"""Honest warnings when an input is far from what a model saw in training: one line each.

They do not refuse anything (the model still runs); they tell the user why a result may be poor.
Limits are generous on purpose: BraTS training cases are 1 mm, skull-stripped, about 1.1-1.6 L of
brain over a 240 x 240 x 155 mm field of view.
"""

from __future__ import annotations

import numpy as np

SPACING_RANGE_MM = (0.5, 2.0)  # resampling to 1 mm outside this range loses or invents detail
MIN_EXTENT_MM = 100.0  # a brain is about 140-170 mm in each direction; less is a partial field of view


def spacing_warnings(spacing) -> list[str]:
    if spacing is None:
        return []
    low, high = SPACING_RANGE_MM
    if all(low <= s <= high for s in spacing):
        return []
    size = " x ".join(f"{s:g}" for s in spacing)
    return [f"voxels of {size} mm are far from the model's 1 mm training data: expect lower accuracy"]


def brain_warnings(mask: np.ndarray, spacing, channel_names) -> list[str]:
    """Field of view, from the brain mask on the model grid (1 mm voxels). A whole head (not
    skull-stripped) is recognised, and stripped when it can be, by ``skull_strip``."""
    lines = []
    spacing = tuple(spacing) if spacing is not None else (1.0,) * mask.ndim
    if not mask.any():
        return ["no brain found in the image (all background)"]
    extent = [float((idx.max() - idx.min() + 1) * s) for idx, s in zip(np.nonzero(mask), spacing)]
    if min(extent) < MIN_EXTENT_MM:
        size = " x ".join(f"{e:.0f}" for e in extent)
        lines.append(f"the brain spans only {size} mm: a partial field of view, expect lower accuracy near its edges")
    return lines


def channel_warnings(stack: np.ndarray, mask: np.ndarray | None, channel_names) -> list[str]:
    """Missing contrast (a constant channel) and intensities unlike raw MRI (mostly negative)."""
    lines = []
    step = (slice(None, None, 2),) * (stack.ndim - 1)  # every 2nd voxel per axis: 8x cheaper, same verdict
    for name, channel in zip(channel_names, stack):
        channel = channel[step]
        values = channel[mask[step]] if mask is not None else channel[channel != 0]
        values = values[np.isfinite(values)] if values.dtype.kind == "f" else values
        if values.size == 0 or float(values.max()) == float(values.min()):
            lines.append(f"the {name} channel has no contrast inside the brain (empty or constant): it is missing, expect a poor result")
        elif np.mean(values < 0) > 0.25:
            lines.append(f"the {name} channel is mostly negative inside the brain (already normalised or not an MR magnitude image?)")
    return lines
