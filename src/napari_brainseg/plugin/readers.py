"""npe2 reader contribution: BraTS case folders, single NIfTI files, LGG (kaggle_3m) data, DICOM exams.

``get_reader`` claims only paths it recognises and returns None otherwise, so napari's builtin
reader and other plugins (napari-nifti, ...) keep handling everything else. Each reader reads the
whole input before building any layer tuple, so a bad file never leaves half a case in the viewer.

Every layer carries ``metadata["brainseg"]`` (what it is, which case, which label convention) and,
for NIfTI sources, ``metadata["nifti_affine"]`` / ``metadata["nifti_header"]`` (raw header bytes) so
that :mod:`.writer` restores the source geometry.
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
from ..io.brats import LABEL_CONVENTION, MODALITIES, SUFFIX_FOR, find_case_files, parse_brats_name, read_brats_case
from ..io.dicom import is_dicom_exam
from ..io.lgg import (
    CHANNELS,
    find_mask_slices,
    find_patient_slices,
    parse_slice_name,
    read_lgg_image,
    read_lgg_mask,
    read_lgg_patient,
    read_mask_slices,
)
from ..io.nifti import Volume, is_msd_name, is_nifti_path, read_nifti, strip_nifti_suffix
from .layer_style import convention_layer_kwargs
from .placement import layer_placement

LayerTuple = tuple  # (data, kwargs, layer_type)
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
# layer building blocks, shared with sample_data.py


def robust_contrast_limits(data: np.ndarray, low: float = 0.5, high: float = 99.5) -> tuple[float, float]:
    """Percentiles of the non-zero voxels (MRI background is 0), subsampled for speed."""
    flat = np.asarray(data).ravel()
    step = max(1, flat.size // 2_000_000)
    sample = flat[::step]
    sample = sample[np.isfinite(sample) & (sample != 0)] if sample.dtype.kind == "f" else sample[sample != 0]
    if sample.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(sample, [low, high]))
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


def _nifti_metadata(volume: Volume | None, *, affine=None, header=None) -> dict:
    affine = volume.affine if volume is not None else affine
    header = volume.header if volume is not None else header
    meta = {}
    if affine is not None:
        meta["nifti_affine"] = np.asarray(affine, dtype=float).copy()
    if header is not None:
        meta["nifti_header"] = bytes(header.binaryblock)
    if volume is not None and volume.path is not None:
        meta["source_path"] = str(volume.path)
    return meta


def image_layer(data, name: str, scale, metadata: dict, *, visible: bool = True) -> LayerTuple:
    """An image layer; one read from a file (``metadata["nifti_affine"]``) lies in patient coordinates."""
    kwargs = {
        "name": name,
        "scale": tuple(scale),
        "contrast_limits": robust_contrast_limits(data),
        "colormap": "gray",
        "metadata": metadata,
        "visible": visible,
    }
    return data, _placed(kwargs, data), "image"


def labels_layer(data, name: str, scale, metadata: dict, convention: str | None) -> LayerTuple:
    """A labels layer; with a known convention its classes get names (``features``) and fixed colours."""
    kwargs = _placed({"name": name, "scale": tuple(scale), "metadata": {**metadata, "label_convention": convention}}, data)
    if convention is not None:
        style = convention_layer_kwargs(convention)
        kwargs["metadata"].update(style.pop("metadata"))
        kwargs.update(style)
    return data, kwargs, "labels"


def _placed(kwargs: dict, data) -> dict:
    """A 3D volume with a NIfTI affine is placed where the scanner put it (``placement``)."""
    affine = kwargs["metadata"].get("nifti_affine")
    if affine is not None and np.ndim(data) == 3 and len(kwargs["scale"]) == 3:
        kwargs.update(layer_placement(affine))
    return kwargs


def brats_layers(
    case_id: str,
    images: dict[str, np.ndarray],
    seg: np.ndarray | None,
    *,
    label_convention: str,
    spacing,
    affine=None,
    header=None,
    source: Path | None,
    file_suffixes: dict[str, str] | None = None,
) -> list[LayerTuple]:
    """One image layer per modality (FLAIR visible, the rest hidden under it) and the labels."""
    base = {**_nifti_metadata(None, affine=affine, header=header)}
    if source is not None:
        base["source_path"] = str(source)
    layers = []
    for modality in MODALITIES:
        if modality not in images:
            continue
        suffix = (file_suffixes or {}).get(modality, modality)
        name = f"{case_id} {modality}" if suffix == modality else f"{case_id} {modality} ({suffix})"
        meta = {**base, "brainseg": {"kind": "brats_image", "case_id": case_id, "modality": modality}}
        layers.append(image_layer(images[modality], name, spacing, meta, visible=modality == "flair"))
    if seg is not None:
        meta = {**base, "brainseg": {"kind": "brats_seg", "case_id": case_id}}
        layers.append(labels_layer(seg, f"{case_id} seg", spacing, meta, label_convention))
    return layers


def lgg_layers(
    patient_id: str,
    image: np.ndarray,
    mask: np.ndarray | None,
    slice_numbers: list[int],
    source: Path | None,
    *,
    title: str | None = None,
) -> list[LayerTuple]:
    """(Z, H, W, 3) or (H, W, 3) slices -> three named grey image layers (sequences, not colours) + mask."""
    title = title or patient_id
    scale = (1.0,) * (image.ndim - 1)  # kaggle_3m gives no pixel spacing
    info = {"patient_id": patient_id, "slice_numbers": list(slice_numbers)}
    if source is not None:
        info["source"] = str(source)
    layers = []
    for index, channel in enumerate(CHANNELS):
        meta = {"brainseg": {**info, "kind": "lgg_image", "channel": channel}}
        data = np.ascontiguousarray(image[..., index])
        layers.append(image_layer(data, f"{title} {channel}", scale, meta, visible=channel == "FLAIR"))
    if mask is not None:
        meta = {"brainseg": {**info, "kind": "lgg_mask"}}
        layers.append(labels_layer(mask, f"{title} mask", scale, meta, Convention.LGG))
    return layers


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
    meta = _nifti_metadata(volume)
    if volume.data.ndim == 4:
        return _four_d_layers(volume, name, meta)
    if _looks_like_segmentation(path, volume.data):
        labels = _as_labels(volume.data)
        if labels is not None:
            meta["brainseg"] = {"kind": "nifti_seg"}
            return [labels_layer(labels, name, volume.spacing, meta, _guess_convention(path, labels))]
        warnings.warn(f"{path.name}: named like a segmentation but holds non-integer values; opened as an image", stacklevel=2)
    meta["brainseg"] = {"kind": "nifti_image"}
    return [image_layer(volume.data, name, volume.spacing, meta)]


def _four_d_layers(volume: Volume, name: str, meta: dict) -> list[LayerTuple]:
    data = volume.data  # (z, y, x, c)
    if data.shape[-1] == len(MSD_CHANNELS):  # Medical Segmentation Decathlon Task01 (BRATS_xxx.nii.gz)
        layers = []
        for index, channel in enumerate(MSD_CHANNELS):
            layer_meta = {**meta, "brainseg": {"kind": "msd_image", "modality": channel, "channel": index}}
            channel_data = np.ascontiguousarray(data[..., index])
            layers.append(image_layer(channel_data, f"{name} {channel}", volume.spacing, layer_meta, visible=index == 0))
        return layers
    # any other 4D series (e.g. time): the 4th axis becomes napari's first slider
    series = np.ascontiguousarray(np.moveaxis(data, -1, 0))
    meta = {**meta, "brainseg": {"kind": "nifti_4d"}}
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
    info = {"kind": "lgg_mask", "patient_id": patient, "slice_numbers": numbers, "source": str(path)}
    return [labels_layer(stack, f"{patient} mask ({Path(path).name})", (1.0,) * 3, {"brainseg": info}, Convention.LGG)]


def read_lgg_slice(path) -> list[LayerTuple]:
    """One kaggle_3m slice (or a lone mask) in 2D; the sibling ``_mask.tif`` is read with it."""
    path = Path(path)
    patient, number, is_mask = parse_slice_name(path)
    if is_mask:
        mask = read_lgg_mask(path)
        info = {"kind": "lgg_mask", "patient_id": patient, "slice_numbers": [number], "source": str(path.parent)}
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
    "brats_layers",
    "lgg_layers",
    "robust_contrast_limits",
]
