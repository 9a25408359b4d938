"""A Medical Segmentation Decathlon Task01_BrainTumour file (``BRATS_001.nii.gz``: the four modalities
FLAIR, T1w, T1gd, T2w on the 4th axis) as a BraTS case, so the CLI and ``segment_case`` take it.

Task01 labels live in separate files with other values (1 edema, 2 non-enhancing, 3 enhancing), so
the case has no segmentation of its own; results are written in the BraTS 2018 convention (1/2/4).
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib

from ..errors import BrainsegInputError
from .brats import MODALITIES, BratsCase, BratsCaseFiles
from .nifti import Volume, is_nifti_path, read_nifti, strip_nifti_suffix

MSD_CHANNELS = ("FLAIR", "T1w", "T1gd", "T2w")  # Task01's dataset.json "modality", = MODALITIES' order


def is_msd_file(path) -> bool:
    """A NIfTI file whose header declares a 4D volume with four channels (read from the header only)."""
    path = Path(path)
    if not (path.is_file() and is_nifti_path(path)):
        return False
    try:
        shape = nib.load(str(path)).shape
    except Exception:  # noqa: BLE001 - unreadable: not recognised here; read_msd_case reports why
        return False
    return len(shape) == 4 and shape[3] == len(MSD_CHANNELS)


def read_msd_case(path) -> BratsCase:
    path = Path(path)
    volume = read_nifti(path)
    if volume.data.ndim != 4 or volume.data.shape[-1] != len(MSD_CHANNELS):
        raise BrainsegInputError(
            f"{path}: expected a 4D file with the four modalities {', '.join(MSD_CHANNELS)}, found shape {volume.data.shape}"
        )
    case_id = strip_nifti_suffix(path.name)
    images = {m: volume.data[..., i] for i, m in enumerate(MODALITIES)}
    header = volume.header.copy()
    header.set_data_shape(volume.data.shape[-2::-1])  # the 3D grid the labels are written on
    reference = Volume(images["flair"], volume.affine, header, path)
    files = BratsCaseFiles(path.parent, case_id, "2018", {m: path for m in MODALITIES}, None)
    return BratsCase(case_id, "2018", images, None, reference, files)
