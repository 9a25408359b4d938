"""File > Open Folder on a DICOM exam: one image layer per series, each placed in the patient's
coordinates (DICOM LPS, listed S, P, L for napari's z, y, x), so series acquired on different grids
overlay where they were in the scanner.

A layer's ``scale`` is the series' voxel size, ``translate`` its origin and ``affine`` the remaining
rotation (``placement``, as for NIfTI files), so tools reading ``scale`` still get millimetres;
``metadata["nifti_affine"]`` / ``["nifti_header"]`` let the widget bring the series to the model's orientation and the NIfTI writer save labels on it.
"""

from __future__ import annotations

from ..io.dicom import MODALITY_NAMES, find_series, guess_modality, read_series
from .layer_tuples import image_layer


def read_dicom_folder(path) -> list[tuple]:
    """Every image series of the exam; the first FLAIR is shown, the others hidden under it."""
    from pathlib import Path

    folder = Path(path)
    layers, shown = [], False
    for series in find_series(folder):
        volume = read_series(series)
        modality = guess_modality(series.description)
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
        # placed in patient coordinates from meta["nifti_affine"] (``placement``)
        layers.append(image_layer(volume.data, f"{folder.name} {what}{number}", volume.spacing, meta, visible=visible))
    return layers
