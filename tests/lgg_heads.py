"""An LGG kaggle_3m patient as a whole-head 3D input (issue 11, skull-stripping).

kaggle_3m stacks are not skull-stripped: scalp, skull, eyes and skull base are in every slice. Given to
the 3D BraTS model as a volume, they stand for the whole-head scans users bring. The files carry no voxel
size, so one is assumed (below); the stripping is measured on the stacks' own grid.
"""

from __future__ import annotations

import numpy as np

# kaggle_3m drops voxel sizes: TCGA axial series mostly have a 240 mm field of view over 256 pixels, and
# every stack runs from the skull base to the vertex (seen on the first and last slices of the 20-, 37-,
# 60- and 88-slice patients), about 160 mm whatever its slice count.
PIXEL_MM = 240.0 / 256
HEAD_SPAN_MM = 160.0


def slice_mm(n_slices: int) -> float:
    return HEAD_SPAN_MM / n_slices


def head_affine(n_slices: int, slice_spacing: float | None = None) -> np.ndarray:
    """NIfTI affine of a kaggle_3m stack: i = column (patient right -> left), j = row (anterior ->
    posterior), k = slice (inferior -> superior): LPS, as BraTS files."""
    dz = slice_spacing if slice_spacing is not None else slice_mm(n_slices)
    return np.diag([-PIXEL_MM, -PIXEL_MM, dz, 1.0])


def head_stack(image: np.ndarray) -> np.ndarray:
    """(Z, H, W, 3) kaggle_3m channels (pre-contrast, FLAIR, post-contrast) -> (4, Z, H, W) float32 in the
    BraTS model's order FLAIR, T1, T1ce, T2; kaggle_3m has no T2, so FLAIR (also T2-weighted) stands in."""
    pre, flair, post = (image[..., c].astype(np.float32) for c in range(3))
    return np.stack([flair, pre, post, flair])
