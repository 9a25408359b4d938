"""A real BraTS case re-saved the ways scanners and other tools save scans (issue 11): thick slices,
finer voxels, another axis order, a non-zero noisy background, modalities on different grids.

Each function writes a new case folder from an existing one; the segmentation is moved with its
images (nearest neighbour), so it is the truth on the new grid.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.processing import resample_from_to

from napari_brainseg.io.brats import find_case_files


def _files(folder: Path) -> dict[str, Path]:
    files = find_case_files(folder)
    out = dict(files.images)
    if files.seg is not None:
        out["seg"] = files.seg
    return out


def _save(img, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))


def crop_case(src: Path, dest: Path, margin: int = 6) -> Path:
    """The case cut to its brain's bounding box (plus ``margin``): a cheaper case for CI."""
    files = _files(src)
    # the brain of every modality: their skull-strip masks differ by a few slices, and a face cutting
    # through one of them would make the background look non-zero
    brain = np.any([np.asarray(nib.load(str(files[m])).dataobj) != 0 for m in files if m != "seg"], axis=0)
    nonzero = np.nonzero(brain)
    box = tuple(slice(max(0, int(i.min()) - margin), int(i.max()) + margin + 1) for i in nonzero)
    for path in files.values():
        _save(nib.load(str(path)).slicer[box], dest / path.name)
    return dest


def grid_with_spacing(img, spacing_ijk) -> tuple[tuple[int, ...], np.ndarray]:
    """(shape, affine) covering ``img``'s field of view with voxels of ``spacing_ijk`` mm, same axes,
    voxel centres of the field of view aligned."""
    old = np.linalg.norm(img.affine[:3, :3], axis=0)
    new = np.asarray(spacing_ijk, dtype=float)
    shape = tuple(max(1, round(float(n * o / s))) for n, o, s in zip(img.shape[:3], old, new))
    scale = new / old
    affine = img.affine.copy()
    affine[:3, :3] = img.affine[:3, :3] @ np.diag(scale)
    affine[:3, 3] = img.affine[:3, :3] @ (0.5 * scale - 0.5) + img.affine[:3, 3]
    return shape, affine


def onto(img, grid, labels: bool = False):
    out = resample_from_to(img, grid, order=0 if labels else 1, mode="nearest")
    data = np.asarray(out.dataobj)
    data = data.astype(np.uint8) if labels else data.astype(np.float32)
    return nib.Nifti1Image(data, out.affine)


def resample_case(src: Path, dest: Path, spacing_ijk) -> Path:
    """Every file on a grid of ``spacing_ijk`` mm voxels (images linear, labels nearest)."""
    files = _files(src)
    grid = grid_with_spacing(nib.load(str(files["flair"])), spacing_ijk)
    for key, path in files.items():
        _save(onto(nib.load(str(path)), grid, labels=key == "seg"), dest / path.name)
    return dest


def reorder_case(src: Path, dest: Path, axcodes: str) -> Path:
    """The same voxels stored with the axes in another order/direction (lossless)."""
    for path in _files(src).values():
        img = nib.load(str(path))
        transform = nib.orientations.ornt_transform(nib.io_orientation(img.affine), nib.orientations.axcodes2ornt(axcodes))
        _save(img.as_reoriented(transform), dest / path.name)
    return dest


def noisy_background_case(src: Path, dest: Path, offset: float = 1.0, noise: float = 0.01, seed: int = 0) -> Path:
    """Background of ``offset`` plus faint noise (``noise`` x the channel's 99th percentile) outside the head."""
    rng = np.random.default_rng(seed)
    for key, path in _files(src).items():
        img = nib.load(str(path))
        data = np.asarray(img.dataobj)
        if key != "seg":
            data = data.astype(np.float32)
            outside = data == 0
            sigma = noise * np.percentile(data[~outside], 99)
            data[outside] = offset + np.abs(rng.normal(0, sigma, int(outside.sum())))
        _save(nib.Nifti1Image(data, img.affine, img.header), dest / path.name)
    return dest


def different_grids_case(src: Path, dest: Path) -> Path:
    """FLAIR (the reference) and the labels unchanged; T1 at 1 x 1 x 3 mm, T1ce at 1.2 mm, T2 with
    another field of view (cut and shifted)."""
    files = _files(src)
    for key, path in files.items():
        img = nib.load(str(path))
        if key == "t1":
            img = onto(img, grid_with_spacing(img, (1.0, 1.0, 3.0)))
        elif key == "t1ce":
            img = onto(img, grid_with_spacing(img, (1.2, 1.2, 1.2)))
        elif key == "t2":
            img = img.slicer[3:, :-5, 2:]  # another shape and origin, same voxel size
        _save(img, dest / path.name)
    return dest
