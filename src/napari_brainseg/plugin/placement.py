"""Where a volume read from a file lies in napari's world: the patient's coordinates (DICOM LPS, listed
S, P, L for napari's z, y, x), from its NIfTI affine.

DICOM series, NIfTI files and the labels written for them (by the CLI or the widget) are then placed
where the scanner put them, so they overlay in one viewer whatever their grids: an exam's series opened
with File > Open Folder and the CLI's ``EXAM.nii.gz`` opened beside them, or NIfTI modalities saved on
different grids. ``scale`` stays the voxel size in mm (what measurements read), ``translate`` the
origin and ``affine`` only the remaining rotation or flip (identity for BraTS 2018-2021 files, stored
LPS), so a layer's ``scale`` and ``translate`` alone place its axial slices.
"""

from __future__ import annotations

import numpy as np

from ..io.dicom import napari_affine


def layer_placement(nifti_affine) -> dict:
    """``scale``, ``translate`` and ``affine`` layer keyword arguments for a NIfTI (i, j, k) affine.

    napari maps data to world as ``affine @ (translate + scale * index)``; here ``affine`` is the
    rotation R, so ``translate`` is R^-1 applied to the origin.
    """
    full = napari_affine(np.asarray(nifti_affine, dtype=float))
    scale = np.linalg.norm(full[:3, :3], axis=0)
    if not np.all(np.isfinite(full)) or np.any(scale == 0):
        return {}  # a degenerate affine places nothing; the caller's voxel-size scale stays
    rotation = full[:3, :3] / scale
    affine = np.eye(4)
    affine[:3, :3] = rotation
    translate = np.linalg.solve(rotation, full[:3, 3])
    return {"scale": tuple(float(s) for s in scale), "translate": tuple(float(t) for t in translate), "affine": affine}
