"""Preprocessing shared by training and inference, so a model sees the same numbers in both.

Both models take channel-first float32 arrays z-scored per channel over brain voxels (non-zero
voxels; the background of skull-stripped MRI is exactly 0) - MONAI's ``NormalizeIntensity`` with
``nonzero=True, channel_wise=True``. BraTS volumes are also cropped to the brain's bounding box,
which cuts the voxels the 3D network has to process roughly in half.
"""

from __future__ import annotations

from enum import Enum

import numpy as np
from monai.transforms import NormalizeIntensity
from monai.transforms.utils import generate_spatial_bounding_box

_normalize = NormalizeIntensity(nonzero=True, channel_wise=True, dtype=np.float32)


def normalize_channels(image: np.ndarray) -> np.ndarray:
    """(C, ...) -> float32 z-score per channel over its non-zero voxels; background stays 0.

    NaN/Inf voxels are treated as background, so one corrupt voxel cannot poison a volume's mean.
    """
    # a copy: MONAI's NormalizeIntensity works in place on float32 numpy input, which would
    # normalise the caller's array (a user's stack, a cached case) as a side effect
    image = np.array(image, dtype=np.float32, copy=True)
    bad = ~np.isfinite(image)
    if bad.any():
        image[bad] = 0  # in place: ``image`` is our own copy
    return np.asarray(_normalize(image), dtype=np.float32)


def brain_bounding_box(image: np.ndarray, margin: int = 2) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Bounding box (start, end) of voxels non-zero in any channel of (C, ...); whole image if none."""
    start, end = generate_spatial_bounding_box(image, select_fn=lambda x: x != 0, margin=margin, allow_smaller=True)
    start, end = tuple(int(s) for s in start), tuple(int(e) for e in end)
    if any(e <= s for s, e in zip(start, end)):  # no non-zero voxel: MONAI gives an all-zero box
        return (0,) * (image.ndim - 1), tuple(image.shape[1:])
    return start, end


def crop(array: np.ndarray, box, channel_first: bool = True) -> np.ndarray:
    start, end = box
    region = tuple(slice(s, e) for s, e in zip(start, end))
    return array[(slice(None),) + region] if channel_first else array[region]


def uncrop(array: np.ndarray, box, shape: tuple[int, ...], fill=0) -> np.ndarray:
    """Paste a cropped (C, ...) array back into a full grid of spatial ``shape``."""
    start, end = box
    out = np.full((array.shape[0],) + tuple(shape), fill, dtype=array.dtype)
    out[(slice(None),) + tuple(slice(s, e) for s, e in zip(start, end))] = array
    return out


def preprocess_brats(stack: np.ndarray) -> tuple[np.ndarray, tuple]:
    """(4, z, y, x) raw modalities -> (normalised crop, crop box)."""
    stack = np.asarray(stack, dtype=np.float32)
    if not np.isfinite(stack).all():  # NaN/Inf are background; copy only when there are any
        stack = np.where(np.isfinite(stack), stack, np.float32(0))
    box = brain_bounding_box(stack)
    return normalize_channels(crop(stack, box)), box


def preprocess_lgg(image: np.ndarray) -> np.ndarray:
    """(Z, H, W, 3) or (H, W, 3) uint8 -> (Z, 3, H, W) float32, z-scored per channel over the stack.

    Statistics come from the whole stack (a patient volume), as in training; a single slice is
    normalised on its own.
    """
    image = np.asarray(image)
    if image.ndim == 3:
        image = image[None]
    channel_first = np.moveaxis(image, -1, 0).astype(np.float32)  # (3, Z, H, W)
    return np.ascontiguousarray(np.moveaxis(normalize_channels(channel_first), 0, 1))


def drop_small_components(mask: np.ndarray, min_fraction: float) -> np.ndarray:
    """Remove connected components smaller than ``min_fraction`` of the largest one.

    A relative size keeps multifocal tumours (similar-sized parts) while dropping the scattered
    false-positive specks that dominate the error on small tumours; keeping only the largest
    component would wipe out a whole tumour whenever one false positive happens to be bigger.
    """
    from scipy import ndimage

    mask = np.asarray(mask, dtype=bool)
    components, count = ndimage.label(mask, structure=np.ones((3,) * mask.ndim, dtype=bool))
    if count <= 1:
        return mask
    sizes = np.bincount(components.ravel())[1:]
    keep = np.flatnonzero(sizes >= min_fraction * sizes.max()) + 1
    return np.isin(components, keep)


class HoleFill(str, Enum):
    """How ``postprocess`` fills holes in the predicted tumour core (``ModelSpec.core_hole_fill``)."""

    VOLUME = "volume"  # cavities closed in 3D only
    PLANES = "planes"  # holes of any 2D slice along any of the three axes (their union)

    def __str__(self) -> str:
        return self.value


def fill_holes(mask: np.ndarray, how: HoleFill | str) -> np.ndarray:
    """``mask`` with its holes filled: a 3D cavity (``volume``) or, with ``planes``, any region a
    2D slice of the mask encloses, along each of the three axes. A necrotic core is enclosed by its
    enhancing rim in most slices but often open in 3D (at the rim's top or bottom, or through a gap),
    so the plane-wise fill recovers cores that a 3D fill leaves empty. Independent of the array's
    orientation (every axis is treated alike), so it runs on any grid.
    """
    from scipy import ndimage

    how = HoleFill(how)
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return mask
    # holes lie inside the mask's bounding box: fill there only (a BraTS core is ~1 % of the volume)
    box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(mask))
    inside = mask[box]
    if how is HoleFill.VOLUME or inside.ndim < 3:  # a 2D mask is its own only plane
        filled = ndimage.binary_fill_holes(inside)
    else:
        filled = inside.copy()
        for axis in range(inside.ndim):
            planes = np.moveaxis(inside, axis, 0)
            out = np.moveaxis(filled, axis, 0)  # a view: writes land in ``filled``
            for k, plane in enumerate(planes):
                out[k] |= ndimage.binary_fill_holes(plane)
    result = mask.copy()
    result[box] = filled
    return result


def postprocess(prob: np.ndarray, spec) -> np.ndarray:
    """(K, ...) sigmoid probabilities -> (K, ...) bool masks: the model's threshold of each channel, its cleanup, then
    (BraTS) the enhancing-tumour small-volume rule and the filling of holes in the tumour core."""
    masks = np.stack([channel > t for channel, t in zip(np.asarray(prob), spec.thresholds)])
    if spec.min_component_fraction:
        masks = np.stack([drop_small_components(m, spec.min_component_fraction) for m in masks])
    if spec.enhancing_min_voxels and "ET" in spec.out_channels:
        et = spec.out_channels.index("ET")
        if masks[et].sum() < spec.enhancing_min_voxels:
            # relabelled as tumour core (necrosis), the BraTS winners' rule: its voxels join the core
            if "TC" in spec.out_channels:
                masks[spec.out_channels.index("TC")] |= masks[et]
            masks[et] = False
    if spec.core_hole_fill and "TC" in spec.out_channels:
        # the core as the labels write it (ET inside TC) with its holes filled: the enclosed necrosis
        # that the network missed joins the core (written as necrosis, label 1)
        tc = spec.out_channels.index("TC")
        core = masks[tc] | masks[spec.out_channels.index("ET")] if "ET" in spec.out_channels else masks[tc]
        masks[tc] = fill_holes(core, spec.core_hole_fill)
    return masks


def reorient(volume: np.ndarray, affine: np.ndarray, axcodes: str) -> tuple[np.ndarray, np.ndarray]:
    """(C, z, y, x) napari-order volume with its NIfTI (i, j, k) affine -> the same data with its voxel
    axes in the orientation ``axcodes`` (nibabel codes for i, j, k, e.g. "LPS"), and the new affine.

    Only flips and axis swaps (no interpolation), so labels reoriented this way stay exact. BraTS 2018
    files are stored LPS and BraTS-Africa files RAS: without this a model sees one of them mirrored.
    """
    import nibabel as nib

    current = nib.orientations.io_orientation(affine)
    wanted = nib.orientations.axcodes2ornt(tuple(axcodes))
    transform = nib.orientations.ornt_transform(current, wanted)
    ijk = np.moveaxis(np.asarray(volume), (1, 2, 3), (3, 2, 1))  # (C, i, j, k)
    spatial = ijk.shape[1:]
    out = np.stack([nib.orientations.apply_orientation(channel, transform) for channel in ijk])
    new_affine = affine @ nib.orientations.inv_ornt_aff(transform, spatial)
    return np.ascontiguousarray(np.moveaxis(out, (1, 2, 3), (3, 2, 1))), new_affine


def stacked_channel_names(channels: tuple[str, ...], context: int) -> tuple[str, ...]:
    """The names of ``stack_neighbours``' channels, e.g. "FLAIR z-1", "FLAIR", "FLAIR z+1"."""
    return tuple(f"{c} z{d:+d}" if d else c for d in range(-context, context + 1) for c in channels)


def stack_neighbours(slices: np.ndarray, context: int) -> np.ndarray:
    """(Z, C, H, W) -> (Z, C * (2 * context + 1), H, W): each slice with its ``context`` neighbours on
    either side as extra channels (2.5D input), ordered slice z-context .. z+context, channels within.
    The first and last slices repeat at the stack's ends (edge padding), as in training.
    """
    if context == 0:
        return slices
    padded = np.concatenate([slices[:1]] * context + [slices] + [slices[-1:]] * context)
    z = slices.shape[0]
    return np.ascontiguousarray(np.concatenate([padded[d : d + z] for d in range(2 * context + 1)], axis=1))
