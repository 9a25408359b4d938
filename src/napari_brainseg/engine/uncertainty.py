"""How sure the model is: the members of a prediction (flip test-time augmentation now; the fold
ensemble's networks when it ships), their per-voxel disagreement and a per-case confidence score.

The members are the same forward passes that flip TTA averages (identity plus one flip per spatial
axis, ``window._flip_axes``), kept apart instead of summed, so their mean is the TTA probability.

- disagreement map: the standard deviation of the members' probabilities per voxel, the largest over
  the output channels (0 where all agree, at most 0.5);
- confidence: the mean pairwise Dice of the members' thresholded masks (1 when they all agree,
  including all empty), averaged over output channels. benchmarks/uncertainty.py measures how well
  it ranks cases by their true Dice on out-of-fold predictions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

PredictFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class Members:
    probabilities: np.ndarray  # (M, K, ...) float32, one row per member

    @property
    def mean(self) -> np.ndarray:
        return self.probabilities.mean(0)

    def disagreement(self) -> np.ndarray:
        return self.probabilities.std(0).max(0).astype(np.float32)

    def confidence(self, threshold: float) -> float:
        return member_agreement(self.probabilities > threshold)


def flip_members(
    predict: PredictFn | Sequence[PredictFn], x: np.ndarray, in_axes: Sequence[int], out_axes: Sequence[int]
) -> Members:
    """Each network in ``predict`` on ``x`` as is and flipped along each of ``in_axes`` in turn, its
    output flipped back along the matching ``out_axes``."""
    predicts = [predict] if callable(predict) else list(predict)
    flips = [None, *zip(in_axes, out_axes)]
    rows = []
    for fn in predicts:
        for flip in flips:
            if flip is None:
                rows.append(np.asarray(fn(x), dtype=np.float32))
            else:
                out = fn(np.ascontiguousarray(np.flip(x, flip[0])))
                rows.append(np.ascontiguousarray(np.flip(np.asarray(out, dtype=np.float32), flip[1])))
    return Members(np.stack(rows))


def member_agreement(masks: np.ndarray) -> float:
    """Mean pairwise Dice of (M, K, ...) bool member masks, averaged over the K channels."""
    per_channel = []
    for k in range(masks.shape[1]):
        flat = masks[:, k].reshape(masks.shape[0], -1)
        sizes = flat.sum(1, dtype=np.int64)
        pairs = []
        for a, b in combinations(range(len(flat)), 2):
            total = sizes[a] + sizes[b]
            pairs.append(1.0 if total == 0 else 2.0 * np.count_nonzero(flat[a] & flat[b]) / total)
        per_channel.append(np.mean(pairs) if pairs else 1.0)
    return float(np.mean(per_channel))
