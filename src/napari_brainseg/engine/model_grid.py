"""Bring an input to the grid a model was trained on, and its outputs back to the input's own grid.

3D models: the orientation (flips and axis swaps, exact) and the voxel spacing (trilinear
resampling) in the registry (``ModelSpec.orientation`` / ``spacing_mm``). 2D models: slices resized
to ``ModelSpec.plane_size``. Outputs come back as probabilities (resampled linearly, then
thresholded by the caller), so labels are never interpolated. An input already on the model's grid
passes through untouched (the same array object), so its results stay bit-identical.

nibabel gives the orientation; scipy's ``affine_transform`` resamples (deterministic on the CPU).
MONAI's ``Spacingd`` would need the affine as metadata through MetaTensors and resamples corner-
aligned; here voxel centres of the field of view are aligned, which is exact to invert.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .preprocess import reorient

# a spacing within 2 % of the model's is used as is (0.98-1.02 mm): resampling would only blur
SPACING_TOLERANCE = 0.02


@dataclass(frozen=True)
class GridMapping:
    """How an input grid was brought to a model grid; :meth:`back` undoes it on model outputs."""

    input_shape: tuple[int, ...]  # spatial shape of the input, napari order
    input_axcodes: str | None  # the input's orientation (None: taken to be the model's already)
    oriented_affine: np.ndarray | None  # affine after reorientation, before resampling
    oriented_shape: tuple[int, ...]  # spatial shape after reorientation
    zoom: tuple[float, ...] | None  # model voxels per input voxel along each axis (None: no resampling)
    model_shape: tuple[int, ...]

    @property
    def identity(self) -> bool:
        return self.zoom is None and self.input_axcodes is None

    def back(self, values: np.ndarray, order: int = 1) -> np.ndarray:
        """(K, *model_shape) -> (K, *input_shape) float32 on the input's own grid."""
        if self.identity:
            return values
        if self.zoom is not None:
            values = _resample(values, self.oriented_shape, tuple(1.0 / z for z in self.zoom), order)
        if self.input_axcodes is not None:
            values, _ = reorient(values, self.oriented_affine, self.input_axcodes)
        return values

    def describe(self, spacing_in) -> list[str]:
        """One line per change made to the input, for the result's messages."""
        lines = []
        if self.input_axcodes is not None:
            lines.append(f"reoriented from {self.input_axcodes} to the model's orientation and back")
        if self.zoom is not None:
            size = " x ".join(f"{s:g}" for s in spacing_in)
            lines.append(f"resampled from {size} mm voxels to the model's spacing and back")
        return lines


def voxel_spacing(affine: np.ndarray) -> tuple[float, ...]:
    """Voxel size (mm) of the napari (z, y, x) axes from a NIfTI (i, j, k) affine."""
    return tuple(float(s) for s in reversed(np.linalg.norm(np.asarray(affine)[:3, :3], axis=0)))


def axcodes(affine: np.ndarray) -> str:
    import nibabel as nib

    return "".join(nib.aff2axcodes(np.asarray(affine)))


def to_model_grid(volume: np.ndarray, spec, affine=None, spacing=None) -> tuple[np.ndarray, GridMapping]:
    """(C, z, y, x) -> (C, *model grid) and the mapping back.

    ``affine`` (NIfTI, of the i, j, k axes) gives both orientation and spacing; without it the
    array is taken to be in the model's orientation already and ``spacing`` (z, y, x mm; None:
    the model's) says its voxel size.
    """
    volume = np.asarray(volume)
    shape = tuple(volume.shape[1:])
    codes, oriented_affine = None, None
    if affine is not None and spec.orientation is not None:
        affine = np.asarray(affine, dtype=float)
        if axcodes(affine) != spec.orientation:
            codes = axcodes(affine)
            volume, oriented_affine = reorient(volume, affine, spec.orientation)
        else:
            oriented_affine = affine
        spacing = voxel_spacing(oriented_affine)
    oriented_shape = tuple(volume.shape[1:])
    zoom = None
    if spacing is not None and spec.spacing_mm is not None:
        ratio = np.asarray(spacing, dtype=float)[-len(spec.spacing_mm):] / np.asarray(spec.spacing_mm, dtype=float)
        if np.any(np.abs(ratio - 1) > SPACING_TOLERANCE):
            zoom = tuple(float(r) for r in ratio)
    if zoom is not None:
        model_shape = tuple(max(1, round(n * z)) for n, z in zip(oriented_shape, zoom))
        values = _resample(volume.astype(np.float32, copy=False), model_shape, zoom, order=1)
        # the background stays exactly 0 (nearest neighbour): a trilinear halo around the brain would
        # join the "non-zero" voxels the normalisation and the crop are computed over
        support = _resample((volume != 0).astype(np.float32), model_shape, zoom, order=0) > 0
        volume = np.where(support, values, np.float32(0))
    mapping = GridMapping(shape, codes, oriented_affine, oriented_shape, zoom, tuple(volume.shape[1:]))
    return volume, mapping


def _resample(values: np.ndarray, out_shape, zoom, order: int) -> np.ndarray:
    """(C, *spatial) -> (C, *out_shape), voxel centres of the field of view aligned.

    Output voxel o samples input coordinate (o + 0.5) / zoom - 0.5 along each axis.
    """
    from scipy import ndimage

    scale = np.array([1.0 / z for z in zoom])
    offset = 0.5 * scale - 0.5
    out = np.empty((values.shape[0], *out_shape), dtype=np.float32)
    for c, channel in enumerate(values):
        ndimage.affine_transform(
            np.asarray(channel, dtype=np.float32), scale, offset=offset, output_shape=tuple(out_shape),
            output=out[c], order=order, mode="nearest",
        )
    return out


@dataclass(frozen=True)
class PlaneMapping:
    """How 2D slices were resized to a model's plane size; :meth:`back` undoes it."""

    input_plane: tuple[int, int]
    model_plane: tuple[int, int]

    @property
    def identity(self) -> bool:
        return self.input_plane == self.model_plane

    def back(self, values: np.ndarray) -> np.ndarray:
        """(K, Z, *model_plane) -> (K, Z, *input_plane) float32."""
        if self.identity:
            return values
        return _resize_planes(values, self.input_plane)

    def describe(self) -> list[str]:
        if self.identity:
            return []
        h, w = self.input_plane
        mh, mw = self.model_plane
        return [f"slices of {h} x {w} resized to the model's {mh} x {mw} and back"]


def to_model_plane(slices: np.ndarray, spec) -> tuple[np.ndarray, PlaneMapping]:
    """(Z, H, W, C) slices -> (Z, *plane_size, C) and the mapping back; unchanged when they fit."""
    plane = tuple(slices.shape[1:3])
    target = tuple(spec.plane_size or plane)
    mapping = PlaneMapping(plane, target)
    if mapping.identity:
        return slices, mapping
    channels_first = np.moveaxis(np.asarray(slices, dtype=np.float32), -1, 0)  # (C, Z, H, W)
    resized = _resize_planes(channels_first, target)
    return np.moveaxis(resized, 0, -1), mapping


def _resize_planes(values: np.ndarray, plane) -> np.ndarray:
    """(C, Z, H, W) -> (C, Z, *plane), linear in-plane, slices untouched."""
    zoom = (1.0, plane[0] / values.shape[-2], plane[1] / values.shape[-1])
    return _resample(values, (values.shape[1], *plane), zoom, order=1)
