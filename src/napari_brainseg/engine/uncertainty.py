"""How sure the model is: the members of a prediction, their per-voxel disagreement and a per-case
confidence score.

A member is one probability map of the same input: a flip of test-time augmentation (identity plus
one flip per spatial axis, the passes flip TTA averages), a network of a fold ensemble, or both (each
network under each flip). All members count equally, so their mean is the (ensemble) TTA probability.

- disagreement map: the standard deviation of the members' probabilities per voxel, the largest over
  the output channels (0 where all agree, at most 0.5);
- confidence: the mean pairwise Dice of the members' thresholded masks (1 when they all agree,
  including all empty), averaged over output channels. benchmarks/uncertainty.py measures how well
  it ranks cases by their true Dice on out-of-fold predictions;
- expected Dice: what the members' mean probability expects of its own mask. Compared as the
  confidence on BraTS out-of-fold cases and not chosen: it ranks them worse overall, though it flags
  the very worst and the misplaced cores better (docs/measurements.md), so it is shown beside the
  confidence as the "check this core" flag (engine.check_flag).

``MemberStats`` takes the members one at a time and keeps three float32 maps plus one bit per member
and voxel, so five networks under four flips of a BraTS volume cost about what one member's
probabilities do, not twenty times that. ``Members`` holds them all (benchmarks.uncertainty scores out-of-fold cases with it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

PredictFn = Callable[[np.ndarray], np.ndarray]
_BITS_SET = np.array([bin(i).count("1") for i in range(256)], np.int64)  # popcount per byte (numpy < 2 has no bitwise_count)


def _count(packed: np.ndarray) -> np.ndarray:
    """Set bits per row of packed masks."""
    return _BITS_SET[packed].sum(-1)


class MemberStats:
    """Running statistics of member probability maps of one shape, added with :meth:`add`.

    ``channel_axis`` is the output-channel axis of a member (0 for (K, z, y, x) volumes, 1 for
    (Z, K, H, W) slice stacks); ``threshold`` makes each member's mask for the confidence: one for
    every channel, or one per output channel (``ModelSpec.threshold``).
    """

    def __init__(self, threshold: float | Sequence[float], channel_axis: int = 0):
        self.threshold = threshold if np.isscalar(threshold) else tuple(threshold)
        self.channel_axis = channel_axis
        self.n = 0
        self._sum = self._welford_mean = self._m2 = None
        self._masks: list[np.ndarray] = []  # per member: (K, ceil(voxels / 8)) packed bits
        self._shape: tuple[int, ...] | None = None

    def add(self, probabilities: np.ndarray) -> None:
        p = np.asarray(probabilities, dtype=np.float32)
        if self._shape is None:
            self._shape = p.shape
            self._sum, self._welford_mean, self._m2 = (np.zeros(p.shape, np.float32) for _ in range(3))
        elif p.shape != self._shape:
            raise ValueError(f"member of shape {p.shape} among members of shape {self._shape}")
        self.n += 1
        self._sum += p
        # Welford's update: exactly 0 where every member agrees, stable where they are close
        delta = p - self._welford_mean
        self._welford_mean += delta / self.n
        self._m2 += delta * (p - self._welford_mean)
        channels = np.moveaxis(p, self.channel_axis, 0)
        channels = channels.reshape(channels.shape[0], -1) > self._thresholds(channels.shape[0])[:, None]
        self._masks.append(np.packbits(channels, axis=1))

    def _thresholds(self, channels: int) -> np.ndarray:
        """The threshold of each of ``channels`` output channels."""
        if np.isscalar(self.threshold):
            return np.full(channels, self.threshold, np.float32)
        if len(self.threshold) != channels:
            raise ValueError(f"{len(self.threshold)} thresholds for {channels} output channels")
        return np.asarray(self.threshold, np.float32)

    @property
    def mean(self) -> np.ndarray:
        """The members' mean probability (the same float32 sums as stacking them and taking the mean)."""
        self._require()
        return self._sum / np.float32(self.n)

    def disagreement(self) -> np.ndarray:
        """Per voxel, the members' standard deviation, the largest over the output channels."""
        self._require()
        return np.sqrt(self._m2 / np.float32(self.n)).max(self.channel_axis).astype(np.float32)

    def confidence(self) -> float:
        """Mean pairwise Dice of the members' masks, averaged over the output channels."""
        return float(np.mean(self.confidence_per_channel()))

    def confidence_per_channel(self) -> list[float]:
        """The confidence of each output channel (BraTS: TC, WT, ET): the members' agreement."""
        return self.agreement_per_channel()

    def expected_dice_per_channel(self) -> list[float]:
        """Per output channel, the Dice the members' mean probability expects of its own mask:
        2 sum(p m) / (sum(p) + sum(m)) with m = p > threshold (1 when both are empty).

        It is low where much of the mask is only just over the threshold, which the agreement misses
        when every member hesitates alike (a network unsure of a core under every flip)."""
        p = np.moveaxis(self.mean, self.channel_axis, 0)
        p = p.reshape(p.shape[0], -1)
        out = []
        for channel, threshold in zip(p, self._thresholds(p.shape[0])):
            mask = channel > threshold
            total = float(channel.sum(dtype=np.float64)) + int(mask.sum())
            out.append(1.0 if total == 0 else 2.0 * float(channel[mask].sum(dtype=np.float64)) / total)
        return out

    def agreement_per_channel(self) -> list[float]:
        """Mean pairwise Dice of the members' masks of each output channel (BraTS: TC, WT, ET)."""
        self._require()
        sizes = [_count(m) for m in self._masks]
        per_channel = []
        for k in range(self._masks[0].shape[0]):
            pairs = []
            for a, b in combinations(range(self.n), 2):
                total = sizes[a][k] + sizes[b][k]
                both = int(_count(self._masks[a][k] & self._masks[b][k]))
                pairs.append(1.0 if total == 0 else 2.0 * both / total)
            per_channel.append(float(np.mean(pairs)) if pairs else 1.0)
        return per_channel

    def _require(self) -> None:
        if self.n == 0:
            raise ValueError("no member added")


def flipped_predictions(
    predict: PredictFn | Sequence[PredictFn], x: np.ndarray, in_axes: Sequence[int], out_axes: Sequence[int]
) -> Iterator[np.ndarray]:
    """Each network in ``predict`` on ``x`` as is and flipped along each of ``in_axes`` in turn, its
    output flipped back along the matching ``out_axes``: one member at a time, network by network."""
    predicts = [predict] if callable(predict) else list(predict)
    for fn in predicts:
        yield np.asarray(fn(x), dtype=np.float32)
        for in_axis, out_axis in zip(in_axes, out_axes):
            out = fn(np.ascontiguousarray(np.flip(x, in_axis)))
            yield np.ascontiguousarray(np.flip(np.asarray(out, dtype=np.float32), out_axis))


def flip_member_stats(
    predict: PredictFn | Sequence[PredictFn], x: np.ndarray, in_axes: Sequence[int], out_axes: Sequence[int],
    threshold: float | Sequence[float], channel_axis: int = 0,
) -> MemberStats:
    """:func:`flipped_predictions` gathered into a :class:`MemberStats` (an ensemble: one
    ``predict`` per network)."""
    stats = MemberStats(threshold, channel_axis)
    for member in flipped_predictions(predict, x, in_axes, out_axes):
        stats.add(member)
    return stats


@dataclass
class Members:
    probabilities: np.ndarray  # (M, K, ...) float32, one row per member

    @property
    def mean(self) -> np.ndarray:
        return self.probabilities.mean(0)

    def stats(self, threshold: float | Sequence[float]) -> MemberStats:
        stats = MemberStats(threshold, channel_axis=0)
        for member in self.probabilities:
            stats.add(member)
        return stats

    def disagreement(self) -> np.ndarray:
        return self.stats(0.5).disagreement()

    def confidence(self, threshold: float | Sequence[float]) -> float:
        return self.stats(threshold).confidence()


def flip_members(
    predict: PredictFn | Sequence[PredictFn], x: np.ndarray, in_axes: Sequence[int], out_axes: Sequence[int]
) -> Members:
    """All of :func:`flipped_predictions` kept, stacked (M, ...)."""
    return Members(np.stack(list(flipped_predictions(predict, x, in_axes, out_axes))))


def member_agreement(masks: np.ndarray) -> float:
    """Mean pairwise Dice of (M, K, ...) bool member masks, averaged over the K channels."""
    stats = MemberStats(0.5, channel_axis=0)
    for mask in masks:
        stats.add(mask.astype(np.float32))
    return stats.confidence()
