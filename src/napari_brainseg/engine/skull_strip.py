"""Skull-stripping of whole-head 3D inputs, with the optional ``[preprocess]`` extra (deepbet).

The 3D model was trained on skull-stripped brains (background exactly 0); a whole head gives it scalp,
skull, eyes and neck it has never seen, and false tumour there. An input whose foreground is far more
than a brain (``MAX_BRAIN_ML`` on the model grid) looks unstripped; with the extra installed its brain
is extracted by deepbet (MIT; its TorchScript weights ship inside its own wheel, so nothing is
downloaded at run time) and everything outside is set to 0 before the shared preprocessing. Without
the extra the input runs as it is, with a one-line hint. A conforming (skull-stripped) input is never
touched, so its labels stay bit-identical.

The 2D LGG model is never stripped: it was trained on unstripped kaggle_3m slices.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import BrainsegInputError

MAX_BRAIN_ML = 2200.0  # a skull-stripped adult brain is 1.1-1.6 L; far more is a whole head
EXTRA_HINT = "pip install 'napari-brainseg[preprocess]'"
MODES = ("auto", "on", "off")
# deepbet was trained on T1-weighted heads; the other contrasts are fallbacks when T1 is missing
STRIP_CHANNEL_PREFERENCE = ("t1", "t1ce", "t2", "flair")


@dataclass(frozen=True)
class Stripped:
    stack: np.ndarray  # (C, z, y, x) with everything outside ``mask`` 0 (the input when not stripped)
    mask: np.ndarray | None  # the brain mask when stripped, else the foreground mask passed in
    lines: list[str]  # what was found and done, one line each
    settings: dict  # for the result's settings (empty when not stripped)


def stripper_available() -> bool:
    try:
        return importlib.util.find_spec("deepbet") is not None
    except ValueError:  # sys.modules["deepbet"] is None: imports of it are blocked
        return False


def foreground_ml(stack: np.ndarray, foreground: np.ndarray | None, spacing_mm) -> float:
    """Volume of the foreground: the given mask, or (exact-zero background) voxels non-zero in any channel."""
    mask = foreground if foreground is not None else np.any(stack != 0, axis=0)
    return float(np.count_nonzero(mask)) * float(np.prod(spacing_mm)) / 1000.0


def strip_channel(stack: np.ndarray, channel_names) -> int:
    """Index of the channel deepbet sees: T1 when it has contrast, else the next in the preference."""
    names = [n.lower() for n in channel_names]
    for wanted in STRIP_CHANNEL_PREFERENCE:
        if wanted in names:
            channel = stack[names.index(wanted)]
            if np.nanmax(channel) > np.nanmin(channel):
                return names.index(wanted)
    return 0


def _ras_affine(axcodes: str, spacing_ijk) -> np.ndarray:
    """A diagonal-permutation affine whose voxel axes have the nibabel ``axcodes`` and ``spacing_ijk``."""
    import nibabel as nib

    affine = np.eye(4)
    affine[:3, :3] = 0
    for axis, (world, flip) in enumerate(nib.orientations.axcodes2ornt(tuple(axcodes))):
        affine[int(world), axis] = flip * spacing_ijk[axis]
    return affine


@lru_cache(maxsize=2)
def _extractor(cpu_only: bool):
    from deepbet import BrainExtraction

    return BrainExtraction(no_gpu=cpu_only)


def brain_mask(volume: np.ndarray, axcodes: str, spacing_mm, device: str = "cpu") -> np.ndarray:
    """(z, y, x) napari-order volume in orientation ``axcodes`` (of the NIfTI i, j, k axes) -> bool brain mask.

    deepbet reorients to RAS itself (``nib.as_closest_canonical``) and back, so the volume goes in as a
    NIfTI image with its true orientation: a mirrored head would give a poorer mask.
    """
    import nibabel as nib

    ijk = np.ascontiguousarray(np.asarray(volume, dtype=np.float32).transpose(2, 1, 0))
    image = nib.Nifti1Image(ijk, _ras_affine(axcodes, tuple(reversed(spacing_mm))))
    _, mask, _ = _extractor(device != "cuda").run(image)
    return np.asarray(mask.dataobj).astype(bool).transpose(2, 1, 0)


def strip_skull(original: np.ndarray, cleaned: np.ndarray, foreground: np.ndarray | None, spec,
                mode: str = "auto", device: str = "cpu") -> Stripped:
    """Strip the skull of a (C, z, y, x) stack on the model grid when it looks unstripped (``mode``
    'auto'), always ('on') or never ('off').

    ``original``: the stack as it came (deepbet sees its raw intensities); ``cleaned``: the same with a
    non-zero background set to 0 (``foreground.zero_background``), whose ``foreground`` mask is given
    (None: the background was exactly 0 already).
    """
    if mode not in MODES:
        raise BrainsegInputError(f"skull-stripping {mode!r}: choose one of {', '.join(MODES)}")
    spacing = spec.spacing_mm or (1.0,) * (cleaned.ndim - 1)
    volume = foreground_ml(cleaned, foreground, spacing)
    unstripped = volume > MAX_BRAIN_ML
    found = f"the foreground is {volume / 1000:.1f} L, more than a brain: the scan looks not skull-stripped"
    if mode == "off" or (mode == "auto" and not unstripped):
        lines = [f"{found}; skull-stripping was turned off (expect false tumour outside the brain)"] if unstripped else []
        return Stripped(cleaned, foreground, lines, {})
    if not stripper_available():
        if mode == "on":
            raise BrainsegInputError(f"skull-stripping needs the [preprocess] extra (deepbet): {EXTRA_HINT}")
        return Stripped(cleaned, foreground, [
            f"{found} (the model was trained on skull-stripped brains; expect false tumour outside the brain): "
            f"{EXTRA_HINT} strips such scans automatically"
        ], {})
    from importlib.metadata import version

    channel = strip_channel(original, spec.in_channels)
    finite = np.nan_to_num(np.asarray(original[channel], dtype=np.float32))
    mask = brain_mask(finite, spec.orientation or "LPS", spacing, device)
    if not mask.any():
        raise BrainsegInputError("skull-stripping found no brain in the image (deepbet's mask is empty)")
    kept_ml = float(mask.sum()) * float(np.prod(spacing)) / 1000.0
    why = found if unstripped else "skull-stripped as asked"
    name = spec.in_channels[channel]
    lines = [f"{why}, so the brain was extracted from the {name} channel with deepbet ([preprocess] extra) "
             f"before segmenting: {kept_ml / 1000:.2f} L kept"]
    stack = np.where(mask[None], cleaned, 0).astype(np.float32, copy=False)
    settings = {"tool": f"deepbet {version('deepbet')}", "channel": name, "foreground_ml": round(volume, 1),
                "brain_ml": round(kept_ml, 1)}
    return Stripped(stack, mask, lines, settings)
