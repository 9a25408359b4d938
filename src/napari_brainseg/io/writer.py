"""Write a labels layer back in its source's format so it overlays the source in any tool.

- NIfTI (``.nii.gz`` / ``.nii``): the source affine and header from ``metadata["nifti_affine"]`` /
  ``metadata["nifti_header"]`` (set by our readers) when present, else a diagonal affine built from
  the layer ``scale``; data transposed back to NIfTI (x, y, z) order; integer values unchanged
  (uint8 when they fit).
- LGG: one ``<patient>_<n>_mask.tif`` (0/255) per slice into a folder, like ``kaggle_3m``, with the
  patient id and slice numbers taken from ``metadata["brainseg"]``.

Every output is written under a temporary name beside its target (``io.tempfiles``: ordinary file
mode, never the output's extension) and then given its final name (``io.claim``), so a crash, a signal
or a full disk never leaves a half-written file under the real name; an LGG patient's masks go into a
temporary folder that is renamed when all of them are written. :func:`write_labels` refuses to
overwrite unless asked, also when another run claims the name while this one writes; the napari writer
hooks overwrite because napari's save dialog has already asked the user.
"""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import tifffile

from ..errors import BrainsegInputError
from . import tempfiles
from .claim import publish_file, publish_folder
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


def _cannot_write(path: Path, exc: OSError) -> BrainsegInputError:
    return BrainsegInputError(f"{path}: cannot write ({exc.strerror or exc})")


def atomic_write(path, write, *, overwrite: bool = True) -> None:
    """Call ``write(binary_file)`` on a temporary file beside ``path``, then give it the name ``path``.

    Without ``overwrite`` an existing ``path`` (even one that appeared meanwhile) is never replaced.
    """
    path = Path(path)
    try:
        tmp = tempfiles.new_temp_file(path.parent)
    except OSError as exc:
        raise BrainsegInputError(f"{path}: cannot write into {path.parent} ({exc.strerror or exc})") from None
    try:
        with open(tmp, "wb") as fh:
            write(fh)
        publish_file(tmp, path, overwrite=overwrite)
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    finally:
        tmp.unlink(missing_ok=True)


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
    if raw_header is not None:
        _restore_transforms(image.header, header)
    # the target's name decides the format, not the temporary file's (which has no NIfTI extension)
    compress = path.name.lower().endswith(".gz")
    atomic_write(path, lambda fh: fh.write(_nifti_bytes(image, compress)), overwrite=overwrite)
    return str(path)


def _nifti_bytes(image: nib.Nifti1Image, compress: bool) -> bytes:
    raw = image.to_bytes()
    return gzip.compress(raw, compresslevel=1, mtime=0) if compress else raw  # nibabel's default level


# the raw qform (quaternion, offsets, qfac in pixdim[0]) and sform fields of a NIfTI header
_TRANSFORM_FIELDS = ("quatern_b", "quatern_c", "quatern_d", "qoffset_x", "qoffset_y", "qoffset_z", "srow_x", "srow_y", "srow_z")


def _restore_transforms(target: nib.Nifti1Header, source: nib.Nifti1Header) -> None:
    """Copy the source's qform and sform exactly, field by field, where the source sets them.

    ``set_qform`` from a matrix recomputes the quaternion, and a file whose qform and sform differ
    (common after registration tools) would lose one of them; tools that read the qform would then
    place the labels elsewhere than the image.
    """
    if int(source["qform_code"]) > 0:
        for key in _TRANSFORM_FIELDS[:6]:
            target[key] = source[key]
        target["pixdim"][0] = source["pixdim"][0]
        target["qform_code"] = source["qform_code"]
    if int(source["sform_code"]) > 0:
        for key in _TRANSFORM_FIELDS[6:]:
            target[key] = source[key]
        target["sform_code"] = source["sform_code"]


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
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BrainsegInputError(f"{folder.parent}: cannot create the output folder ({exc.strerror or exc})") from None
    _check_writable(folder.parent)
    if folder.is_dir():
        _check_writable(folder)
    binary = (mask > 0).astype(np.uint8) * np.uint8(255)
    # all or nothing: every mask into a temporary folder beside the target, renamed when complete
    try:
        tmp = tempfiles.new_temp_folder(folder.parent)
    except OSError as exc:
        raise BrainsegInputError(f"{folder}: cannot write into {folder.parent} ({exc.strerror or exc})") from None
    try:
        for target, plane in zip(targets, binary):
            encoded = io.BytesIO()  # tifffile reports a full disk as a short write; plain files say ENOSPC
            tifffile.imwrite(encoded, plane)
            (tmp / target.name).write_bytes(encoded.getvalue())
        publish_folder(tmp, folder, overwrite=overwrite)
    except OSError as exc:
        raise _cannot_write(folder, exc) from None
    finally:
        tempfiles.remove(tmp)
    return [str(t) for t in targets]
