"""npe2 writer contributions: napari's save dialog hands over a labels layer's data and attributes."""

from __future__ import annotations

from ..io.writer import write_labels_lgg, write_labels_nifti

# napari writer contributions: napari's save dialog has already confirmed any overwrite.


def napari_write_labels_nifti(path: str, data, attributes: dict) -> list[str]:
    return [
        write_labels_nifti(
            path, data, attributes.get("metadata"), scale=attributes.get("scale"), overwrite=True
        )
    ]


def napari_write_labels_lgg(path: str, data, attributes: dict) -> list[str]:
    return write_labels_lgg(path, data, attributes.get("metadata"), overwrite=True)
