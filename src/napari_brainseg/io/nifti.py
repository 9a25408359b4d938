"""NIfTI volumes as (z, y, x) arrays plus the geometry needed to write them back unchanged.

nibabel gives arrays indexed (i, j, k) = (x, y, z) in voxel space. napari shows the last two axes as
the plane, so the volume is transposed to (k, j, i): the slider then walks axial slices, the way
radiologists read BraTS. The affine and header stay in voxel (i, j, k) terms so that the writer can
transpose back and save a file that overlays the source exactly in 3D Slicer or ITK-SNAP.
"""

from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from ..errors import BrainsegInputError, first_line

NIFTI_SUFFIXES = (".nii.gz", ".nii")


def is_nifti_path(path: str | Path) -> bool:
    return str(path).lower().endswith(NIFTI_SUFFIXES)


_MSD_NAME = re.compile(r"^BRATS_\d+$")  # Medical Segmentation Decathlon Task01: imagesTr/BRATS_001.nii.gz


def is_msd_name(path: str | Path) -> bool:
    """A Decathlon Task01 file name (its 4D image or its label file share the name)."""
    return is_nifti_path(path) and bool(_MSD_NAME.match(strip_nifti_suffix(Path(path).name)))


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


# deflate cannot compress better than about 1032:1, so a .nii.gz of n bytes holds at most this many
GZIP_MAX_RATIO = 1032


def _check_declared_size(path: Path, img) -> None:
    """Refuse a header whose image cannot fit in the file, before any buffer of that size is allocated.

    A corrupt or truncated header can declare a volume of terabytes; nibabel would allocate it first
    and fail (or exhaust memory) later.
    """
    header = img.header
    shape = tuple(int(n) for n in header.get_data_shape())
    if any(n < 0 for n in shape):
        raise BrainsegInputError(f"{path}: the header declares a negative dimension {shape}")
    itemsize = np.dtype(header.get_data_dtype()).itemsize
    declared = int(header.get_data_offset()) + int(np.prod(shape, dtype=object)) * itemsize
    size = path.stat().st_size
    if str(path).lower().endswith(".gz"):
        if declared > size * GZIP_MAX_RATIO + 65536:
            raise BrainsegInputError(
                f"{path}: the header declares a {shape} volume that this {size}-byte file cannot hold (truncated or corrupt)"
            )
    elif declared > size:
        raise BrainsegInputError(
            f"{path}: the file is truncated (the header declares {declared} bytes, the file has {size})"
        )


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
        _check_declared_size(path, img)
        # dataobj keeps the stored integer type (get_fdata would turn labels into float64)
        array = np.asanyarray(img.dataobj)
    except BrainsegInputError:
        raise
    except (EOFError, OSError, zlib.error, gzip.BadGzipFile) as exc:
        raise BrainsegInputError(f"{path}: the file is truncated or not a valid NIfTI ({first_line(exc)})") from None
    except Exception as exc:  # nibabel raises many types for corrupt headers
        raise BrainsegInputError(f"{path}: cannot read as NIfTI ({type(exc).__name__}: {first_line(exc)})") from None
    if array.ndim not in (3, 4):
        raise BrainsegInputError(f"{path}: expected a 3D or 4D volume, found {array.ndim}D of shape {array.shape}")
    if array.size == 0:
        raise BrainsegInputError(f"{path}: the volume is empty (shape {array.shape})")
    if array.dtype.kind not in "buif":
        raise BrainsegInputError(f"{path}: unsupported voxel type {array.dtype} (expected integer or real values)")
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    header = img.header.copy()
    return Volume(data=nifti_to_napari(array), affine=np.asarray(img.affine, dtype=float), header=header, path=path)
