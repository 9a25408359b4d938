"""File > Open Folder on a DICOM exam: one image layer per series, each placed in the patient's
coordinates (DICOM LPS, listed S, P, L for napari's z, y, x), so series acquired on different grids
overlay where they were in the scanner.

A layer's ``scale`` is the series' voxel size and its ``affine`` the remaining rotation and origin,
so tools reading ``scale`` still get millimetres; ``metadata["nifti_affine"]`` / ``["nifti_header"]``
let the widget bring the series to the model's orientation and the NIfTI writer save labels on it.
"""

from __future__ import annotations

import numpy as np

from ..io.dicom import (
    MODALITY_NAMES,
    find_series,
    guess_modality,
    napari_affine,
    read_series,
)
from ..io.nifti import Volume
from .readers import image_layer


def _layer_geometry(volume: Volume) -> tuple[tuple, np.ndarray]:
    """(scale, affine) with ``affine @ diag(scale)`` the series' napari affine."""
    full = napari_affine(volume.affine)
    scale = np.linalg.norm(full[:3, :3], axis=0)
    rest = full.copy()
    rest[:3, :3] = full[:3, :3] / scale
    return tuple(float(s) for s in scale), rest


def read_dicom_folder(path) -> list[tuple]:
    """Every image series of the exam; the first FLAIR is shown, the others hidden under it."""
    from pathlib import Path

    folder = Path(path)
    layers, shown = [], False
    for series in find_series(folder):
        volume = read_series(series)
        modality = guess_modality(series.description)
        scale, affine = _layer_geometry(volume)
        what = modality or series.description or "series"
        number = f" (series {series.number})" if series.number is not None else ""
        meta = {
            "nifti_affine": volume.affine,
            "nifti_header": bytes(volume.header.binaryblock),
            "source_path": str(series.folder),
            "brainseg": {
                "kind": "dicom_series", "case_id": folder.name, "modality": modality,
                "series_description": series.description, "series_uid": series.uid,
                "sequence": MODALITY_NAMES.get(modality),
            },
        }
        visible = modality == "flair" and not shown
        shown |= visible
        data, kwargs, kind = image_layer(volume.data, f"{folder.name} {what}{number}", scale, meta, visible=visible)
        kwargs["affine"] = affine
        layers.append((data, kwargs, kind))
    return layers
