"""Write a labels layer back in its source's format so it overlays the source in any tool.

- NIfTI (``.nii.gz`` / ``.nii``): the source affine and header from ``metadata["nifti_affine"]`` /
  ``metadata["nifti_header"]`` (set by our readers) when present, else a diagonal affine built from
  the layer ``scale``; data transposed back to NIfTI (x, y, z) order; integer values unchanged
  (uint8 when they fit).
- LGG: one ``<patient>_<n>_mask.tif`` (0/255) per slice into a folder, like ``kaggle_3m``, with the
  patient id and slice numbers taken from ``metadata["brainseg"]``.

Files are written to a temporary name in the target folder and renamed, so a crash never leaves a
half-written file under the real name. :func:`write_labels` refuses to overwrite unless asked; the
napari writer hooks overwrite because napari's save dialog has already asked the user.
"""

from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import tifffile

from ..errors import BrainsegInputError
from .nifti import is_nifti_path, napari_to_nifti


def write_labels(path, labels, metadata: dict | None = None, *, scale=None, overwrite: bool = False) -> list[str]:
    """Write labels (a napari Labels layer or an array) to ``path``; returns the files written.

    A path ending in ``.nii.gz``/``.nii`` gives a NIfTI file; any other path is a folder that
    receives LGG mask slices.
    """
    data, metadata, scale = _unpack(labels, metadata, scale)
    if is_nifti_path(path):
        return [write_labels_nifti(path, data, metadata, scale=scale, overwrite=overwrite)]
    return write_labels_lgg(path, data, metadata, overwrite=overwrite)


def _unpack(labels, metadata, scale):
    if hasattr(labels, "data") and hasattr(labels, "metadata"):  # a napari layer
        metadata = labels.metadata if metadata is None else metadata
        scale = tuple(labels.scale) if scale is None else scale
        labels = labels.data
    return np.asarray(labels), dict(metadata or {}), scale


def _integer_labels(path, data: np.ndarray) -> np.ndarray:
    if data.dtype == bool:
        return data.astype(np.uint8)
    if not np.issubdtype(data.dtype, np.integer):
        if not np.array_equal(data, np.round(data)):
            raise BrainsegInputError(f"{path}: labels must be integers, got fractional {data.dtype} values")
    if data.size == 0:
        raise BrainsegInputError(f"{path}: the labels layer is empty")
    low, high = int(data.min()), int(data.max())
    for dtype in (np.uint8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return data.astype(dtype, copy=False)
    raise BrainsegInputError(f"{path}: label values {low}..{high} do not fit a 32-bit NIfTI integer type")


def _check_target(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise BrainsegInputError(f"{path}: already exists; not overwriting (pass overwrite=True to replace it)")
    if not path.parent.is_dir():
        raise BrainsegInputError(f"{path.parent}: the output folder does not exist")
    _check_writable(path.parent)


def _check_writable(folder: Path) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BrainsegInputError(f"{folder}: the output folder is not writable; choose another one")


def _atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place."""
    suffix = "".join(path.suffixes[-2:]) if path.name.lower().endswith(".nii.gz") else path.suffix
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    except OSError as exc:
        raise BrainsegInputError(f"{path}: cannot write into {path.parent} ({exc.strerror or exc})") from None
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise BrainsegInputError(f"{path}: cannot write ({exc.strerror or exc})") from None
        raise


def nifti_target(path) -> Path:
    """``path`` as a NIfTI file name: napari's save dialog suggests the bare layer name."""
    path = Path(path)
    return path if is_nifti_path(path) else path.with_name(path.name + ".nii.gz")


def write_labels_nifti(path, data, metadata: dict | None = None, *, scale=None, overwrite: bool = False) -> str:
    """Write one NIfTI labels file; a name without ``.nii``/``.nii.gz`` gets ``.nii.gz``."""
    path = nifti_target(path)
    _check_target(path, overwrite)
    metadata = metadata or {}
    labels = _integer_labels(path, np.asarray(data))
    if labels.ndim == 2:  # a single slice: a one-slice volume
        labels = labels[np.newaxis]
        scale = (1.0, *tuple(scale or (1.0, 1.0))[-2:])
    if labels.ndim != 3:
        raise BrainsegInputError(f"{path}: can only write 2D or 3D labels as NIfTI, got shape {labels.shape}")
    array = napari_to_nifti(labels)
    affine = metadata.get("nifti_affine")
    raw_header = metadata.get("nifti_header")
    if affine is not None and raw_header is not None:
        header = nib.Nifti1Header(binaryblock=bytes(raw_header))
        source_shape = tuple(int(n) for n in header.get_data_shape()[:3])
        if source_shape != array.shape:
            raise BrainsegInputError(
                f"{path}: labels shape {labels.shape} does not match the source image grid "
                f"{tuple(reversed(source_shape))}; cannot restore its geometry"
            )
        affine = np.asarray(affine, dtype=float)
    else:
        zooms = tuple(float(s) for s in reversed(tuple(scale or (1.0,) * 3)[-3:]))
        affine = np.diag((*zooms, 1.0))
        header = nib.Nifti1Header()
        header.set_data_shape(array.shape)
        header.set_zooms(zooms)
        header.set_xyzt_units("mm")
    image = nib.Nifti1Image(array, affine, header=header)
    image.header.set_data_dtype(array.dtype)
    image.header.set_slope_inter(1.0, 0.0)  # labels are stored values, never rescaled
    image.header["cal_min"], image.header["cal_max"] = 0, 0
    # keep the source's qform/sform codes (so tools pick the same transform); scanner-anat if none
    sform_code = int(header["sform_code"]) or 1
    qform_code = int(header["qform_code"]) or 1
    image.set_sform(affine, code=sform_code)
    image.set_qform(affine, code=qform_code)
    # the target's name decides the format, not the temporary file's (nib.save would guess from it)
    compress = path.name.lower().endswith(".gz")
    _atomic_write(path, lambda tmp: Path(tmp).write_bytes(_nifti_bytes(image, compress)))
    return str(path)


def _nifti_bytes(image: nib.Nifti1Image, compress: bool) -> bytes:
    raw = image.to_bytes()
    return gzip.compress(raw, compresslevel=1, mtime=0) if compress else raw  # nibabel's default level


def write_labels_lgg(folder, data, metadata: dict | None = None, *, overwrite: bool = False) -> list[str]:
    """One ``<patient>_<n>_mask.tif`` (uint8 0/255) per slice into ``folder`` (created if needed)."""
    folder = Path(folder)
    info = (metadata or {}).get("brainseg", {})
    mask = np.asarray(data)
    if mask.ndim == 2:
        mask = mask[np.newaxis]
    if mask.ndim != 3:
        raise BrainsegInputError(f"{folder}: LGG masks must be 2D or a (Z, H, W) stack, got shape {mask.shape}")
    patient = info.get("patient_id") or folder.name
    numbers = list(info.get("slice_numbers") or range(1, mask.shape[0] + 1))
    if len(numbers) != mask.shape[0]:
        raise BrainsegInputError(f"{folder}: {mask.shape[0]} slices but {len(numbers)} slice numbers in the metadata")
    if folder.exists() and not folder.is_dir():
        raise BrainsegInputError(f"{folder}: exists and is not a folder")
    targets = [folder / f"{patient}_{n}_mask.tif" for n in numbers]
    if not overwrite:
        existing = [t.name for t in targets if t.exists()]
        if existing:
            raise BrainsegInputError(f"{folder}: {existing[0]} already exists; not overwriting (pass overwrite=True)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BrainsegInputError(f"{folder}: cannot create the output folder ({exc.strerror or exc})") from None
    _check_writable(folder)
    binary = (mask > 0).astype(np.uint8) * np.uint8(255)
    for target, plane in zip(targets, binary):
        _atomic_write(target, lambda tmp, plane=plane: tifffile.imwrite(tmp, plane))
    return [str(t) for t in targets]
