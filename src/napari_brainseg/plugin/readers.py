"""npe2 reader contribution: BraTS case folders, single NIfTI files, LGG (kaggle_3m) data, DICOM exams.

``get_reader`` claims only paths it recognises and returns None otherwise, so napari's builtin
reader and other plugins (napari-nifti, ...) keep handling everything else. Each reader reads the
whole input before building any layer tuple, so a bad file never leaves half a case in the viewer.

The layer tuples are built by :mod:`.layer_tuples`: every layer carries ``metadata["brainseg"]``
(what it is, which case, which label convention) and, for NIfTI sources, ``metadata["nifti_affine"]``
/ ``metadata["nifti_header"]`` (raw header bytes) so that :mod:`.writer` restores the source geometry.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import conventions as label_conventions
from ..conventions import Convention
from ..errors import BrainsegInputError
from ..io.brats import LABEL_CONVENTION, SUFFIX_FOR, find_case_files, parse_brats_name, read_brats_case
from ..io.dicom import is_dicom_exam
from ..io.lgg import (
    find_mask_slices,
    find_patient_slices,
    parse_slice_name,
    read_lgg_image,
    read_lgg_mask,
    read_lgg_patient,
    read_mask_slices,
)
from ..io.nifti import Volume, is_msd_name, is_nifti_path, read_nifti, strip_nifti_suffix
from .layer_names import case_from_name
from .layer_tuples import LayerTuple, brats_layers, image_layer, labels_layer, lgg_layers, nifti_metadata

ReaderFn = Callable[[str], list]

# Medical Segmentation Decathlon Task01_BrainTumour channel order (its dataset.json "modality").
MSD_CHANNELS = ("FLAIR", "T1w", "T1gd", "T2w")
_SEG_WORDS = ("seg", "label", "mask")
_MAX_LABEL_VALUES = 32  # an integer volume with at most this many distinct values is a segmentation


# --------------------------------------------------------------------------------------------
# entry point


def get_reader(path) -> ReaderFn | None:
    """The npe2 ``get_reader`` hook: a reader function for paths this plugin handles, else None."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None  # stacks of several paths are napari's builtin business
        path = path[0]
    try:
        path = Path(os.fspath(path))
    except TypeError:
        return None
    try:
        return _choose_reader(path)
    except OSError:
        return None  # unreadable path (permissions, broken link): not ours to judge
    except BrainsegInputError as exc:
        # the path is ours but broken: let napari report it as a reader error with our message
        return _raiser(exc)


def _choose_reader(path: Path) -> ReaderFn | None:
    if path.is_dir():
        if find_case_files(path) is not None:
            return read_brats_folder
        if find_patient_slices(path) is not None:
            return read_lgg_folder
        if find_mask_slices(path) is not None:
            return read_lgg_mask_folder
        if is_dicom_exam(path):
            from .dicom_layers import read_dicom_folder

            return read_dicom_folder
        if not any(path.iterdir()):
            return _raiser(BrainsegInputError(f"{path}: the folder is empty (no BraTS case files or LGG slices)"))
        return None
    if is_nifti_path(path):
        return read_nifti_file
    if path.suffix.lower() in (".tif", ".tiff") and parse_slice_name(path) is not None:
        return read_lgg_slice
    return None


def _raiser(exc: BrainsegInputError) -> ReaderFn:
    def fail(_path):
        raise exc

    return fail


# --------------------------------------------------------------------------------------------
# readers


def read_brats_folder(path) -> list[LayerTuple]:
    case = read_brats_case(path)
    for message in case.warnings:
        warnings.warn(message, UserWarning, stacklevel=2)
    return brats_layers(
        case.case_id,
        case.images,
        case.seg,
        label_convention=case.label_convention,
        spacing=case.spacing,
        affine=case.affine,
        header=case.reference.header,
        source=case.files.folder,
        file_suffixes=SUFFIX_FOR[case.convention],
    )


def read_nifti_file(path) -> list[LayerTuple]:
    path = Path(path)
    volume = read_nifti(path)
    name = strip_nifti_suffix(path.name)
    parsed = parse_brats_name(path)
    case = parsed[0] if parsed is not None else case_from_name(name) or name  # every layer carries its case
    meta = nifti_metadata(volume)
    if volume.data.ndim == 4:
        return _four_d_layers(volume, name, meta, case)
    if _looks_like_segmentation(path, volume.data):
        labels = _as_labels(volume.data)
        if labels is not None:
            meta["brainseg"] = {"kind": "nifti_seg", "case": case}
            return [labels_layer(labels, name, volume.spacing, meta, _guess_convention(path, labels))]
        warnings.warn(f"{path.name}: named like a segmentation but holds non-integer values; opened as an image", stacklevel=2)
    meta["brainseg"] = {"kind": "nifti_image", "case": case}
    return [image_layer(volume.data, name, volume.spacing, meta)]


def _four_d_layers(volume: Volume, name: str, meta: dict, case: str) -> list[LayerTuple]:
    data = volume.data  # (z, y, x, c)
    if data.shape[-1] == len(MSD_CHANNELS):  # Medical Segmentation Decathlon Task01 (BRATS_xxx.nii.gz)
        layers = []
        for index, channel in enumerate(MSD_CHANNELS):
            layer_meta = {**meta, "brainseg": {"kind": "msd_image", "case": case, "modality": channel, "channel": index}}
            channel_data = np.ascontiguousarray(data[..., index])
            layers.append(image_layer(channel_data, f"{name} {channel}", volume.spacing, layer_meta, visible=index == 0))
        return layers
    # any other 4D series (e.g. time): the 4th axis becomes napari's first slider
    series = np.ascontiguousarray(np.moveaxis(data, -1, 0))
    meta = {**meta, "brainseg": {"kind": "nifti_4d", "case": case}}
    return [image_layer(series, name, (1.0, *volume.spacing), meta)]


def _looks_like_segmentation(path: Path, data: np.ndarray) -> bool:
    stem = strip_nifti_suffix(path.name).lower()
    if any(word in stem for word in _SEG_WORDS):
        return True
    parsed = parse_brats_name(path)
    if parsed is not None and parsed[2] != "seg":
        return False  # named as an MRI modality: an image even when blank or with few grey levels
    if not np.issubdtype(data.dtype, np.integer):
        return False
    # cheap first look on a strided sample before counting every voxel
    if np.unique(data.ravel()[:: max(1, data.size // 200_000)]).size > _MAX_LABEL_VALUES:
        return False
    return np.unique(data).size <= _MAX_LABEL_VALUES and data.min() >= 0


def _as_labels(data: np.ndarray) -> np.ndarray | None:
    """Integer labels in the smallest unsigned type that holds them; None for fractional data."""
    if not np.issubdtype(data.dtype, np.integer):
        if not np.all(np.isfinite(data)) or not np.array_equal(data, np.round(data)):
            return None
    if data.size and data.min() < 0:
        return data.astype(np.int32)
    top = int(data.max()) if data.size else 0
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return data.astype(dtype)
    return data.astype(np.int64)


def _guess_convention(path: Path, labels: np.ndarray) -> str | None:
    """Convention from a BraTS or MSD file name, else from the values; None when it cannot be told."""
    parsed = parse_brats_name(path)
    if parsed is not None:
        return LABEL_CONVENTION[parsed[1]]
    if is_msd_name(path):
        return "msd"  # values 1/2/3 like BraTS 2023, but 1 is edema and 2 the core
    return label_conventions.guess_brats_convention(labels)


def read_lgg_folder(path) -> list[LayerTuple]:
    case = read_lgg_patient(path)
    return lgg_layers(case.patient_id, case.image, case.mask, case.slice_numbers, case.folder)


def read_lgg_mask_folder(path) -> list[LayerTuple]:
    """A folder of ``<patient>_<n>_mask.tif`` only (as the mask-slices writer saves): one labels stack."""
    patient, numbers, stack = read_mask_slices(path)
    info = {"kind": "lgg_mask", "case": patient, "patient_id": patient, "slice_numbers": numbers, "source": str(path)}
    return [labels_layer(stack, f"{patient} mask ({Path(path).name})", (1.0,) * 3, {"brainseg": info}, Convention.LGG)]


def read_lgg_slice(path) -> list[LayerTuple]:
    """One kaggle_3m slice (or a lone mask) in 2D; the sibling ``_mask.tif`` is read with it."""
    path = Path(path)
    patient, number, is_mask = parse_slice_name(path)
    if is_mask:
        mask = read_lgg_mask(path)
        info = {
            "kind": "lgg_mask", "case": f"{patient}_{number}", "patient_id": patient, "slice_numbers": [number],
            "source": str(path.parent),
        }
        meta = {"brainseg": info}
        return [labels_layer(mask, f"{patient}_{number} mask", (1.0, 1.0), meta, Convention.LGG)]
    image = read_lgg_image(path)
    mask_path = path.with_name(f"{patient}_{number}_mask{path.suffix}")
    mask = read_lgg_mask(mask_path) if mask_path.is_file() else None
    if mask is not None and mask.shape != image.shape[:2]:
        raise BrainsegInputError(f"{mask_path}: mask shape {mask.shape} differs from the slice's {image.shape[:2]}")
    return lgg_layers(patient, image, mask, [number], path.parent, title=f"{patient}_{number}")


__all__ = [
    "get_reader",
    "read_brats_folder",
    "read_nifti_file",
    "read_lgg_folder",
    "read_lgg_mask_folder",
    "read_lgg_slice",
]
