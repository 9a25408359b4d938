"""NIfTI volumes as (z, y, x) arrays plus the geometry needed to write them back unchanged.

nibabel gives arrays indexed (i, j, k) = (x, y, z) in voxel space. napari shows the last two axes as
the plane, so the volume is transposed to (k, j, i): the slider then walks axial slices, the way
radiologists read BraTS. The affine and header stay in voxel (i, j, k) terms so that the writer can
transpose back and save a file that overlays the source exactly in 3D Slicer or ITK-SNAP.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from ..errors import BrainsegInputError

NIFTI_SUFFIXES = (".nii.gz", ".nii")


def is_nifti_path(path: str | Path) -> bool:
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def strip_nifti_suffix(name: str) -> str:
    lower = name.lower()
    for suffix in NIFTI_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


@dataclass
class Volume:
    """A NIfTI image in napari order (z, y, x[, channel]) with its source geometry."""

    data: np.ndarray
    affine: np.ndarray  # 4x4, voxel (i, j, k) -> world (RAS+ mm), as in the file
    header: nib.Nifti1Header
    path: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm for the (z, y, x) axes of ``data``."""
        zooms = self.header.get_zooms()[:3]
        return tuple(float(z) for z in reversed(zooms))


def nifti_to_napari(array: np.ndarray) -> np.ndarray:
    """(x, y, z[, c]) -> (z, y, x[, c])."""
    if array.ndim == 4:
        return np.ascontiguousarray(np.transpose(array, (2, 1, 0, 3)))
    return np.ascontiguousarray(np.transpose(array, (2, 1, 0)))


def napari_to_nifti(array: np.ndarray) -> np.ndarray:
    """(z, y, x) -> (x, y, z), the inverse of :func:`nifti_to_napari` for 3D volumes."""
    return np.ascontiguousarray(np.transpose(array, (2, 1, 0)))


def read_nifti(path: str | Path, *, dtype=None) -> Volume:
    """Read a NIfTI file; raise :class:`BrainsegInputError` with one line on anything unreadable."""
    path = Path(path)
    if not path.is_file():
        raise BrainsegInputError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise BrainsegInputError(f"{path}: the file is empty")
    try:
        img = nib.load(str(path))
        if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
            raise BrainsegInputError(f"{path}: not a NIfTI image")
        # dataobj keeps the stored integer type (get_fdata would turn labels into float64)
        array = np.asanyarray(img.dataobj)
    except BrainsegInputError:
        raise
    except (EOFError, OSError, zlib.error, gzip.BadGzipFile) as exc:
        raise BrainsegInputError(f"{path}: the file is truncated or not a valid NIfTI ({exc})") from None
    except Exception as exc:  # nibabel raises many types for corrupt headers
        raise BrainsegInputError(f"{path}: cannot read as NIfTI ({type(exc).__name__}: {exc})") from None
    if array.ndim not in (3, 4):
        raise BrainsegInputError(f"{path}: expected a 3D or 4D volume, found {array.ndim}D of shape {array.shape}")
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    header = img.header.copy()
    return Volume(data=nifti_to_napari(array), affine=np.asarray(img.affine, dtype=float), header=header, path=path)
