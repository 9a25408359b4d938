"""The 3D model's four input layers when they are not on one grid (DICOM series, NIfTI files of one
case), and which series became which modality.

The widget captures each layer's data and NIfTI affine when Run is pressed (:func:`capture`); the worker
brings them onto the reference layer's grid (FLAIR, :func:`onto_reference`) with the same code the CLI
uses for a case folder or an exam (``io.brats.on_reference_grid``: world coordinates, optional rigid
co-registration), so the result lies on the FLAIR layer and overlays it. Layers already on one grid pass
through untouched. A layer without an affine (not read from a file) cannot be placed, so layers of
different shapes without one are refused with one line.

Napari-free: layers are read through ``.name``, ``.data`` and ``.metadata`` only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import BrainsegInputError
from ..io.brats import on_reference_grid
from ..io.dicom import MODALITY_NAMES
from ..io.grids import same_grid
from ..io.nifti import Volume
from .layer_names import brats_modality

REFERENCE = "flair"  # the grid the labels are written on, as the CLI's default --reference


def layer_modality(layer) -> str | None:
    """What sequence a layer holds: a DICOM series' guess from its description, else from its name."""
    meta = layer.metadata.get("brainseg", {})
    if meta.get("kind") == "dicom_series":
        return meta.get("modality")
    return brats_modality(layer.name)


def series_lines(chosen: dict) -> list[str]:
    """One line per chosen DICOM series layer (``chosen``: modality -> layer): which series became which
    modality, and when the user picked a series whose description reads as another sequence."""
    lines = []
    for modality, layer in chosen.items():
        meta = layer.metadata.get("brainseg", {})
        if meta.get("kind") != "dicom_series":
            continue
        line = f"{MODALITY_NAMES[modality]}: series '{meta.get('series_description', '')}' (layer '{layer.name}')"
        guessed = meta.get("modality")
        if guessed != modality:
            reads = f"its description reads as {MODALITY_NAMES[guessed]}" if guessed else "its description names no sequence"
            line += f", as chosen in the picker ({reads})"
        lines.append(line)
    return lines


@dataclass(frozen=True)
class CapturedGrids:
    """Each input layer's affine (None: not from a file), captured on the main thread."""

    modalities: tuple[str, ...]
    names: tuple[str, ...]
    affines: tuple[np.ndarray | None, ...]

    def volumes(self, arrays) -> dict[str, Volume]:
        import nibabel as nib

        out = {}
        for modality, data, affine in zip(self.modalities, arrays, self.affines):
            header = nib.Nifti1Header()
            header.set_data_shape(np.asarray(data).shape[::-1])
            header.set_zooms(tuple(float(z) for z in np.linalg.norm(affine[:3, :3], axis=0)))
            out[modality] = Volume(np.asarray(data), np.asarray(affine, dtype=float), header)
        return out

    def on_one_grid(self, arrays) -> bool:
        shapes = {np.asarray(a).shape for a in arrays}
        if len(shapes) > 1:
            return False
        if any(a is None for a in self.affines):
            return True  # same shapes, no geometry to compare: taken as one grid, as before
        volumes = list(self.volumes(arrays).values())
        return all(same_grid(v, volumes[0]) for v in volumes[1:])


def capture(modalities, layers) -> CapturedGrids:
    """The grids of ``layers`` (in ``modalities`` order); refuses layers of different shapes that cannot
    be placed in one world (no NIfTI affine)."""
    affines = tuple(layer.metadata.get("nifti_affine") for layer in layers)
    shapes = {tuple(layer.data.shape) for layer in layers}
    if len(shapes) > 1 and any(a is None for a in affines):
        placed = ", ".join(f"'{layer.name}' {tuple(layer.data.shape)}" for layer in layers)
        raise BrainsegInputError(
            f"the input layers have different shapes ({placed}) and not all come from files with a position in "
            "the scanner (NIfTI or DICOM), so they cannot be resampled onto one grid; open them with "
            "napari-brainseg, or resample them first"
        )
    names = tuple(layer.name for layer in layers)
    return CapturedGrids(tuple(modalities), names, tuple(None if a is None else np.asarray(a) for a in affines))


def onto_reference(grids: CapturedGrids, arrays, register: bool = False) -> tuple[list, list[str], dict]:
    """(arrays in the model's channel order on the FLAIR layer's grid, one line per change, transforms).

    Worker-thread work: resampling a series takes seconds."""
    arrays = [np.asarray(a) for a in arrays]
    if not register and grids.on_one_grid(arrays):
        return arrays, [], {}
    lines: list[str] = []
    names = {m: f"layer '{name}'" for m, name in zip(grids.modalities, grids.names)}  # what the user sees
    images, transforms = on_reference_grid(grids.volumes(arrays), REFERENCE, register, lines, names)
    return [images[m] for m in grids.modalities], lines, transforms
