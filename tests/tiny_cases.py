"""Tiny synthetic cases written to disk (BraTS case folders, LGG patients, odd NIfTI files): written in milliseconds,
segmented in well under a second; for tests where the real data is not the point."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import tifffile

MODALITY_SUFFIXES = ("flair", "t1", "t1ce", "t2")
# anisotropic (0.9 x 1.1 x 3 mm) and oblique (rotated 20 degrees about z, 10 about x) with an offset
_c, _s = np.cos(np.radians(20)), np.sin(np.radians(20))
_cx, _sx = np.cos(np.radians(10)), np.sin(np.radians(10))
OBLIQUE_AFFINE = (
    np.array([[_c, -_s, 0, 0], [_s, _c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    @ np.array([[1, 0, 0, 0], [0, _cx, -_sx, 0], [0, _sx, _cx, 0], [0, 0, 0, 1]])
    @ np.diag([0.9, 1.1, 3.0, 1.0])
)
OBLIQUE_AFFINE[:3, 3] = (-101.5, 87.25, -40.125)


def brain_volume(shape_xyz=(20, 24, 16), seed=0, dtype=np.int16) -> np.ndarray:
    """An (x, y, z) volume: a bright ellipsoid 'brain' with a brighter blob, zero background."""
    rng = np.random.default_rng(seed)
    grid = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape_xyz), indexing="ij")
    r2 = sum(g**2 for g in grid)
    data = np.where(r2 < 0.8, 400 + rng.normal(0, 30, shape_xyz), 0)
    data += np.where(sum((g - 0.2) ** 2 for g in grid) < 0.1, 500, 0) * (r2 < 0.8)
    return data.astype(dtype)


def write_nifti(path: Path, data_xyz: np.ndarray, affine=None) -> Path:
    affine = np.diag([1.0, 1.0, 1.0, 1.0]) if affine is None else affine
    image = nib.Nifti1Image(data_xyz, affine)
    image.set_sform(affine, code=1)
    image.set_qform(affine, code=1)
    nib.save(image, str(path))
    return path


def write_brats_case(
    parent: Path,
    case_id: str = "Brats18_Tiny_1",
    *,
    shape_xyz=(20, 24, 16),
    affine=None,
    modalities=MODALITY_SUFFIXES,
    seg: np.ndarray | None = None,
    ext: str = ".nii.gz",
) -> Path:
    """A 2018-named BraTS case folder with tiny co-registered modalities (and optionally a seg)."""
    folder = Path(parent) / case_id
    folder.mkdir(parents=True, exist_ok=True)
    for index, modality in enumerate(modalities):
        write_nifti(folder / f"{case_id}_{modality}{ext}", brain_volume(shape_xyz, seed=index), affine)
    if seg is not None:
        write_nifti(folder / f"{case_id}_seg{ext}", seg, affine)
    return folder


def write_lgg_patient(parent: Path, patient="TCGA_ZZ_0001_20000101", n_slices=3, size=48, masks=True) -> Path:
    """A kaggle_3m-style patient folder of tiny 3-channel uint8 slices."""
    folder = Path(parent) / patient
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:size, :size]
    brain = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 2.5) ** 2
    for n in range(1, n_slices + 1):
        image = (brain[..., None] * rng.integers(60, 200, (size, size, 3))).astype(np.uint8)
        tifffile.imwrite(folder / f"{patient}_{n}.tif", image, photometric="rgb")
        if masks:
            tifffile.imwrite(folder / f"{patient}_{n}_mask.tif", np.zeros((size, size), np.uint8))
    return folder


def write_header_only_nifti(path: Path, shape_xyz, dtype=np.int16) -> Path:
    """A .nii whose header declares ``shape_xyz`` but which holds no voxel data (a few hundred bytes)."""
    header = nib.Nifti1Header()
    header.set_data_shape(shape_xyz)
    header.set_data_dtype(dtype)
    header.set_zooms((1.0,) * len(shape_xyz))
    header["vox_offset"] = 352
    path.write_bytes(header.binaryblock + b"\0" * 4)
    return path


def no_temp_files(folder: Path) -> bool:
    """True when no writer temporary (``.<name>.*.tmp*``) is left anywhere under ``folder``."""
    return not [p for p in Path(folder).rglob("*") if p.name.startswith(".") or ".tmp" in p.name]
