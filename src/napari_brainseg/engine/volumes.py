"""The results table of one segmentation: volume per class, and against a ground truth its volume and
Dice. The widget (dock table, layer metadata, CSV) and the CLI (``volumes.csv``) print the same rows.

Rows: every label class of the convention, then for BraTS the evaluation regions WT (whole tumour:
all labels) and TC (tumour core: necrotic + enhancing); ET is the enhancing class itself.
"""

from __future__ import annotations

import numpy as np

from .. import conventions as label_conventions
from ..conventions import Convention
from ..errors import BrainsegInputError
from .metrics import dice_per_channel

# volumes.csv; the check_* columns: the "check this core" flag (engine.check_flag), with the confidence
COLUMNS = ("case", "class", "volume_ml", "truth_ml", "dice", "confidence", "check_region", "check_expected_dice", "check_flag")
_REGION_NAMES = {"WT": "WT (whole tumour)", "TC": "TC (tumour core)"}


def _masks(labels: np.ndarray, convention: str) -> dict[str, np.ndarray]:
    table = label_conventions.CONVENTIONS[convention]
    masks = {c.name: labels == c.value for c in table.classes}
    if convention in label_conventions.GLIOMA_CONVENTIONS:
        regions = dict(zip(label_conventions.BRATS_REGIONS, label_conventions.brats_labels_to_regions(labels, convention)))
        masks.update({_REGION_NAMES[r]: regions[r] for r in ("WT", "TC")})
    return masks


def truth_in(truth: np.ndarray, truth_convention: str | None, convention: str) -> np.ndarray:
    """A ground truth relabelled into the prediction's convention (BraTS 2018 / 2023 / MSD; LGG: any label > 0)."""
    truth = np.asarray(truth)
    if convention == Convention.LGG:
        return (truth > 0).astype(np.uint8)
    if truth_convention not in label_conventions.GLIOMA_CONVENTIONS:
        truth_convention = label_conventions.guess_brats_convention(truth) or convention
    return label_conventions.convert_brats_labels(truth, truth_convention, convention)


def volume_rows(labels, convention: str, voxel_ml: float, truth=None, truth_convention: str | None = None) -> list[dict]:
    """One row per class/region: ``class``, ``volume_ml`` and, with a truth, ``truth_ml`` and ``dice``."""
    labels = np.asarray(labels)
    predicted = _masks(labels, convention)
    reference = None if truth is None else _masks(truth_in(truth, truth_convention, convention), convention)
    rows = []
    for name, mask in predicted.items():
        row = {"class": name, "volume_ml": float(np.count_nonzero(mask)) * voxel_ml}
        if reference is not None:
            row["truth_ml"] = float(np.count_nonzero(reference[name])) * voxel_ml
            row["dice"] = dice_per_channel(mask[None], reference[name][None])[0]
        rows.append(row)
    return rows


def case_rows(result, case, reference=None) -> list[dict]:
    """``volume_rows`` of a segmented case (the Case protocol), each row led by the case's name; the truth
    is ``reference`` (a labels array on the case's grid) or else the case's own segmentation, when it has one."""
    from ..io.cases import CaseKind
    from .segment import voxel_volume_ml

    own = case.seg if case.kind == CaseKind.BRATS else case.mask
    truth = reference if reference is not None else own
    truth_convention = case.label_convention if reference is None else None  # a named file's values are guessed
    if truth is not None and np.shape(truth) != result.labels.shape:
        raise BrainsegInputError(
            f"{case.name}: the reference labels have shape {np.shape(truth)}, the case {result.labels.shape}"
        )
    voxel_ml, _ = voxel_volume_ml(result.settings.get("spacing_mm"), result.labels.ndim)
    rows = volume_rows(result.labels, result.label_convention, voxel_ml, truth, truth_convention)
    # the per-case confidence (engine.uncertainty), on every row of the case, when the run kept its members
    extra = {} if result.confidence is None else {"confidence": result.confidence}
    if getattr(result, "check", None) is not None:
        extra.update(result.check.columns())
    return [{"case": case.name, **row, **extra} for row in rows]
