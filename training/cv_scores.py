"""Per-case Dice of every post-processing setting cross-validation chooses from, scored as users get it.

One case's saved out-of-fold probabilities are thresholded, cleaned and (BraTS) put through the
enhancing-tumour rule exactly as ``engine.preprocess.postprocess`` does; BraTS regions are then
scored as the labels the package writes give them back (``conventions.brats_regions_to_labels``
nests them: ET inside TC inside WT), not as the raw sigmoid channels. Every case checks one
setting against that shipped path itself.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from napari_brainseg.conventions import brats_labels_to_regions, brats_regions_to_labels
from napari_brainseg.engine.metrics import dice_per_channel
from napari_brainseg.engine.preprocess import fill_holes, postprocess

GRID = {
    "lgg": {"tta": [False, True], "threshold": [0.3, 0.4, 0.5, 0.6, 0.7],
            # extending this to 0.5 and largest-only (1.0) after folds 0-1 lowered the nested estimate over all
            # five folds from 0.825 to 0.812 (fold 4 was given largest-only and lost two tumours whole); RUNS.md
            "min_component_fraction": [None, 0.05, 0.1, 0.2, 0.3]},
    "brats": {"tta": [False, True],
              # a sigmoid threshold per region (TC, WT, ET): with one shared threshold (0.4, 0.5 or 0.6), WT did
              # best at 0.4 and TC/ET at 0.6, the edge of that grid, on all 72 cases of brats-unet3d-cv; then
              # every fold chose TC 0.7 and WT 0.3 on TC 0.5-0.7 / WT 0.3-0.6, again the edge (RUNS.md, session 10)
              "threshold": [(tc, wt, et) for tc in (0.5, 0.6, 0.7, 0.8) for wt in (0.2, 0.3, 0.4, 0.5, 0.6)
                            for et in (0.5, 0.6, 0.7)],
              "min_component_fraction": [None, 0.05, 0.1, 0.2],
              # enhancing-tumour small-volume rule: ET of fewer voxels (1 mm^3 each) relabelled as tumour core
              "enhancing_min_voxels": [None, 100, 200, 500, 1000],
              # holes of the tumour core filled plane by plane (engine.preprocess.fill_holes) or not; the 3D-only
              # fill ("volume") was never chosen and gained a quarter of the plane-wise fill (RUNS.md, session 9)
              "core_hole_fill": [None, "planes"]},
}


def settings(dataset: str) -> list[dict]:
    grid = GRID[dataset]
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def grid_threshold(spec, dataset: str) -> float | tuple[float, ...]:
    """The registry's threshold as the grid writes it: one per channel where the grid has them."""
    return spec.thresholds if isinstance(GRID[dataset]["threshold"][0], tuple) else spec.threshold


def channel_thresholds(setting: dict, channels: int) -> tuple[float, ...]:
    """A setting's threshold of each channel (``ModelSpec.threshold``: one for all, or one per channel)."""
    threshold = setting["threshold"]
    return tuple(threshold) if isinstance(threshold, (tuple, list)) else (threshold,) * channels


def case_scores(prob: dict, truth: np.ndarray, spec, candidates: list[dict]) -> list[list[float]]:
    """Per setting, the per-region Dice of one case (LGG: one channel; BraTS: TC, WT, ET).

    ``prob``: {"prob", "prob_tta"} (K, ...) probabilities; ``truth``: (K, ...) bool regions (BraTS:
    from labels, so nested). Everything is computed inside the box holding every voxel over the grid's
    lowest threshold and every true voxel: outside it every mask of every setting is empty, so
    components, fills and Dice are those of the whole volume. Connected components are labelled once
    per (TTA, channel, threshold), every cleanup fraction is read off those labels, each cleaned mask
    is packed into bits once, and a setting's rule, nesting and Dice are counted on the bits: the same
    masks as the shipped path and the same values as ``metrics.dice_per_channel`` (checked on the whole
    volume, on two settings per case). MONAI's DiceMetric costs 0.07 s a call on float tensors; 88
    patients x 70 settings took 45 minutes with it, 72 BraTS cases x 6144 settings take minutes here.
    """
    channels = len(truth)
    lowest = min(min(channel_thresholds(s, channels)) for s in candidates)
    sources = {tta: prob["prob_tta" if tta else "prob"] for tta in {s["tta"] for s in candidates}}
    box = (slice(None), *_box([p.astype(np.float32).max(0) > lowest for p in sources.values()] + [truth.any(0)]))
    sources = {tta: p[box].astype(np.float32) for tta, p in sources.items()}
    whole_truth, truth = truth, truth[box]
    truth_bits = [np.packbits(t) for t in truth]
    truth_sizes = [_popcount(t) for t in truth_bits]
    components, cleaned, bits, filled = {}, {}, {}, {}

    def cleaned_channel(tta, k, threshold, fraction) -> np.ndarray:
        if (tta, k, threshold) not in components:
            mask = sources[tta][k] > threshold
            components[(tta, k, threshold)] = (mask, _components(mask))
        key = (tta, k, threshold, fraction)
        if key not in cleaned:
            mask, parts = components[(tta, k, threshold)]
            cleaned[key] = _keep(mask, parts, fraction)
            bits[key] = np.packbits(cleaned[key])
        return cleaned[key]

    out = []
    for setting in candidates:
        tta, fraction = setting["tta"], setting["min_component_fraction"]
        thresholds = channel_thresholds(setting, channels)
        for k, t in enumerate(thresholds):
            cleaned_channel(tta, k, t, fraction)
        masks = [bits[(tta, k, t, fraction)] for k, t in enumerate(thresholds)]
        masks = enhancing_rule(masks, spec, setting.get("enhancing_min_voxels"))
        fill = setting.get("core_hole_fill")
        if fill:
            # the core (TC with ET) is the same whatever the ET rule moved, so its fill is computed once
            tc, et = spec.out_channels.index("TC"), spec.out_channels.index("ET")
            key = (tta, thresholds[tc], thresholds[et], fraction, fill)
            if key not in filled:
                core = cleaned[(tta, tc, thresholds[tc], fraction)] | cleaned[(tta, et, thresholds[et], fraction)]
                filled[key] = np.packbits(fill_holes(core, fill))
            masks[tc] = filled[key]
        out.append([_packed_dice(m, t, truth_size)
                    for m, t, truth_size in zip(as_labelled(masks, spec), truth_bits, truth_sizes)])
    for check in (len(candidates) // 2, len(candidates) - 1):  # the last: every rule at its strongest
        assert np.allclose(shipped_dice(prob, whole_truth, spec, candidates[check]), out[check]), \
            "crossval scoring differs from the shipped postprocess/labels/metrics"
    return out


def enhancing_rule(masks: list[np.ndarray], spec, min_voxels: int | None) -> list[np.ndarray]:
    """``postprocess``'s enhancing-tumour rule on per-channel masks packed into bits (``np.packbits``):
    ET of fewer than ``min_voxels`` voxels becomes tumour core. Returns a new list; the masks are not changed."""
    masks = list(masks)
    if not min_voxels or "ET" not in spec.out_channels:
        return masks
    et = spec.out_channels.index("ET")
    if _popcount(masks[et]) >= min_voxels:
        return masks
    if "TC" in spec.out_channels:
        tc = spec.out_channels.index("TC")
        masks[tc] = masks[tc] | masks[et]
    masks[et] = np.zeros_like(masks[et])
    return masks


def as_labelled(masks: list[np.ndarray], spec) -> list[np.ndarray]:
    """BraTS regions as the written labels give them back: TC includes ET, WT includes TC (LGG: as is).
    Works alike on bool masks and on masks packed into bits."""
    if tuple(spec.out_channels) != ("TC", "WT", "ET"):
        return list(masks)
    tc, wt, et = masks
    tc = tc | et
    return [tc, wt | tc, et]


def shipped_dice(prob: dict, truth: np.ndarray, spec, setting: dict) -> list[float]:
    """Dice of one setting through the package itself: postprocess, BraTS labels and back, MONAI Dice."""
    chosen = dataclasses.replace(spec, **{k: v for k, v in setting.items() if k != "tta"})
    masks = postprocess(prob["prob_tta" if setting["tta"] else "prob"].astype(np.float32), chosen)
    if tuple(spec.out_channels) == ("TC", "WT", "ET"):
        masks = brats_labels_to_regions(brats_regions_to_labels(masks, "brats2018"), "brats2018")
    return dice_per_channel(masks, truth)


def _box(masks: list[np.ndarray]) -> tuple[slice, ...]:
    """The bounding box of the union of ``masks`` (the whole array when they are all empty)."""
    union = np.logical_or.reduce(masks)
    if not union.any():
        return tuple(slice(None) for _ in union.shape)
    return tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(union))


def _packed_dice(pred: np.ndarray, truth: np.ndarray, truth_size: int) -> float:
    """Dice of two packed masks with metrics.dice_per_channel's convention (both empty: 1)."""
    total = _popcount(pred) + truth_size
    return 1.0 if total == 0 else 2.0 * _popcount(pred & truth) / total


def _popcount(packed: np.ndarray) -> int:
    """Set bits of a mask packed by ``np.packbits``."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2
        return int(np.bitwise_count(packed).sum(dtype=np.int64))
    return int(np.unpackbits(packed).sum(dtype=np.int64))


def _components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels and sizes of ``mask``'s connected components (full connectivity, as ``postprocess``)."""
    from scipy import ndimage

    labels, _ = ndimage.label(mask, structure=np.ones((3,) * mask.ndim, dtype=bool))
    return labels, np.bincount(labels.ravel())[1:]


def _keep(mask: np.ndarray, components, fraction: float | None) -> np.ndarray:
    labels, sizes = components
    if not fraction or len(sizes) <= 1:
        return mask
    lookup = np.zeros(len(sizes) + 1, dtype=bool)
    lookup[1:] = sizes >= fraction * sizes.max()
    return lookup[labels]
