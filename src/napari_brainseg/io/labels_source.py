"""A segmentation on disk as (labels, convention, spacing), whatever holds it: a labels NIfTI file (a
prediction the CLI wrote, a ground truth, a corrected layer saved from napari), a BraTS case folder (its
seg file), an LGG patient folder (its masks) or a folder of LGG mask slices (what the CLI writes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import conventions as label_conventions
from ..conventions import Convention
from ..errors import BrainsegInputError


@dataclass
class LabelsSource:
    name: str
    labels: np.ndarray  # (z, y, x) uint8
    convention: str
    spacing: tuple[float, float, float] | None  # mm; None when the files do not say (LGG)


def read_labels_source(path, convention: str | None = None) -> LabelsSource:
    from .brats import LABEL_CONVENTION, find_case_files, parse_brats_name, read_seg
    from .lgg import find_mask_slices, find_patient_slices, read_lgg_patient, read_mask_slices
    from .nifti import is_nifti_path, strip_nifti_suffix

    path = Path(path)
    if not path.exists():
        raise BrainsegInputError(f"{path}: no such file or folder")
    if path.is_file() and is_nifti_path(path):
        labels = read_seg(path)
        parsed = parse_brats_name(path)
        guess = LABEL_CONVENTION[parsed[1]] if parsed else label_conventions.guess_brats_convention(labels)
        return LabelsSource(strip_nifti_suffix(path.name), labels, _convention(path, labels, convention, guess), _spacing(path))
    if path.is_dir() and (files := find_case_files(path)) is not None:
        if files.seg is None:
            raise BrainsegInputError(f"{path}: this BraTS case folder has no segmentation file")
        labels = read_seg(files.seg)
        guess = LABEL_CONVENTION[files.convention]
        return LabelsSource(files.case_id, labels, _convention(path, labels, convention, guess), _spacing(files.seg))
    if path.is_dir() and find_patient_slices(path) is not None:
        case = read_lgg_patient(path)
        if case.mask is None:
            raise BrainsegInputError(f"{path}: this LGG patient folder has no mask slices")
        return LabelsSource(case.patient_id, (case.mask > 0).astype(np.uint8), Convention.LGG, None)
    if path.is_dir() and find_mask_slices(path) is not None:
        patient, _numbers, masks = read_mask_slices(path)
        return LabelsSource(patient, (masks > 0).astype(np.uint8), Convention.LGG, None)
    raise BrainsegInputError(
        f"{path}: not a labels NIfTI file, a BraTS case folder with a segmentation, or an LGG patient or mask folder"
    )


def _spacing(path: Path) -> tuple[float, float, float]:
    """(z, y, x) mm from the header alone (read_seg has checked the file)."""
    import nibabel as nib

    return tuple(float(z) for z in reversed(nib.load(str(path)).header.get_zooms()[:3]))


def _convention(path: Path, labels: np.ndarray, given: str | None, guess: str | None) -> str:
    values = set(np.unique(labels).tolist()) - {0}
    if given is not None:
        return given
    if guess is not None:
        return guess
    if values <= {1}:
        return Convention.LGG
    raise BrainsegInputError(f"{path}: cannot tell the label convention from values {sorted(values)}; pass --convention")
