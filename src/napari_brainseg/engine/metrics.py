"""Per-volume segmentation metrics on binary masks, from MONAI, with the conventions stated once.

Conventions (as in the BraTS challenge): Dice of an empty prediction against an empty truth is 1,
and 0 against a non-empty truth (IoU, sensitivity and precision likewise when undefined); HD95 is 0 when both are empty and 373.13 mm (the BraTS volume
diagonal) when exactly one is. Metrics are per patient volume, never per slice.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from monai.metrics import DiceMetric, HausdorffDistanceMetric, get_confusion_matrix

from ..conventions import BRATS_REGIONS, GLIOMA_CONVENTIONS, Convention, brats_labels_to_regions, guess_brats_convention

HD95_ONE_EMPTY = 373.13


def _tensor(mask: np.ndarray) -> torch.Tensor:
    """(K, ...) bool -> (1, K, ...) float tensor, the batch-first layout MONAI metrics take."""
    return torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None]


def dice_per_channel(pred: np.ndarray, truth: np.ndarray) -> list[float]:
    metric = DiceMetric(include_background=True, reduction="none", ignore_empty=False)
    return [float(v) for v in metric(_tensor(pred), _tensor(truth))[0]]


def region_dice(pred: np.ndarray, pred_convention: str, truth: np.ndarray, truth_convention: str | None = None) -> dict:
    """Dice per evaluation region of two label maps: BraTS TC, WT, ET (each map in its own convention;
    a truth convention not given is guessed from its values, else taken as the prediction's), LGG the tumour."""
    if pred_convention == Convention.LGG:
        return {"tumour": dice_per_channel((pred > 0)[None], (truth > 0)[None])[0]}
    if truth_convention not in GLIOMA_CONVENTIONS:
        truth_convention = guess_brats_convention(truth) or pred_convention
    scores = dice_per_channel(brats_labels_to_regions(pred, pred_convention), brats_labels_to_regions(truth, truth_convention))
    return dict(zip(BRATS_REGIONS, scores))


def hd95_per_channel(pred: np.ndarray, truth: np.ndarray, spacing=None) -> list[float]:
    metric = HausdorffDistanceMetric(include_background=True, percentile=95, reduction="none")
    values = metric(_tensor(pred), _tensor(truth), spacing=list(spacing) if spacing is not None else None)[0]
    out = []
    for k, v in enumerate(values):
        p_empty, t_empty = not pred[k].any(), not truth[k].any()
        if p_empty and t_empty:
            out.append(0.0)
        elif p_empty or t_empty:
            out.append(HD95_ONE_EMPTY)
        else:
            out.append(float(v) if math.isfinite(float(v)) else HD95_ONE_EMPTY)
    return out


def overlap_metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Dice, IoU, sensitivity and precision of one binary volume (empty-vs-empty counts as 1)."""
    cm = get_confusion_matrix(_tensor(pred[None]), _tensor(truth[None]), include_background=True)[0, 0]
    tp, fp, tn, fn = (float(v) for v in cm)

    both_empty = tp + fp + fn == 0

    def ratio(num: float, den: float) -> float:
        # an undefined ratio is 1 when both masks are empty (nothing to find, nothing found), else 0
        if den == 0:
            return 1.0 if both_empty else 0.0
        return num / den

    return {
        "dice": ratio(2 * tp, 2 * tp + fp + fn),
        "iou": ratio(tp, tp + fp + fn),
        "sensitivity": ratio(tp, tp + fn),
        "precision": ratio(tp, tp + fp),
    }
