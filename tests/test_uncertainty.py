"""Uncertainty: the flip-TTA members kept apart, their disagreement map and the per-case confidence."""

from __future__ import annotations

import numpy as np
import pytest

from napari_brainseg.engine.uncertainty import MemberStats, flip_member_stats, flip_members, member_agreement


def pairwise_dice(masks: np.ndarray) -> float:
    """The confidence written out plainly: mean pairwise Dice of (M, K, ...) masks, mean over K."""
    per_channel = []
    for k in range(masks.shape[1]):
        pairs = []
        for a in range(len(masks)):
            for b in range(a + 1, len(masks)):
                total = masks[a, k].sum() + masks[b, k].sum()
                pairs.append(1.0 if total == 0 else 2 * (masks[a, k] & masks[b, k]).sum() / total)
        per_channel.append(np.mean(pairs))
    return float(np.mean(per_channel))


def test_agreement_of_identical_disjoint_and_empty_members():
    a = np.zeros((1, 10, 10), bool)
    a[0, 2:6, 2:6] = True
    b = np.zeros_like(a)
    b[0, 6:9, 6:9] = True
    assert member_agreement(np.stack([a, a, a])) == 1.0
    assert member_agreement(np.stack([a, b])) == 0.0
    assert member_agreement(np.zeros((4, 1, 5, 5), bool)) == 1.0  # all agree there is nothing
    half = a.copy()
    half[0, 2:4] = False  # 8 of 16 voxels
    assert member_agreement(np.stack([a, half])) == pytest.approx(2 * 8 / 24)


def test_streamed_members_give_what_the_stacked_members_give():
    """One member at a time (an ensemble's networks under flips) = all members stacked: the mean to the
    bit, the standard deviation, and the pairwise Dice of the masks in either channel layout."""
    rng = np.random.default_rng(1)
    members = rng.random((6, 2, 5, 7, 9)).astype(np.float32) ** 3  # (M, K, z, y, x), mostly below 0.5
    stats = MemberStats(0.4)
    for member in members:
        stats.add(member)
    assert stats.n == 6
    np.testing.assert_array_equal(stats.mean, members.mean(0))
    np.testing.assert_allclose(stats.disagreement(), members.std(0).max(0), atol=1e-6)
    assert stats.confidence() == pytest.approx(pairwise_dice(members > 0.4), abs=1e-12)
    assert 0.0 < stats.confidence() < 1.0
    per_channel = stats.confidence_per_channel()  # the BraTS regions' own agreement (TC, WT, ET)
    assert per_channel == pytest.approx([pairwise_dice(members[:, k:k + 1] > 0.4) for k in range(2)], abs=1e-12)
    assert np.mean(per_channel) == pytest.approx(stats.confidence(), abs=1e-15)

    slices = MemberStats(0.4, channel_axis=1)  # (Z, K, H, W) slice stacks, as the 2D models give them
    for member in members:
        slices.add(np.moveaxis(member, 0, 1))
    np.testing.assert_allclose(slices.disagreement(), stats.disagreement(), atol=1e-7)
    assert slices.confidence() == pytest.approx(stats.confidence(), abs=1e-12)
    with pytest.raises(ValueError, match="shape"):
        stats.add(members[0, :1])


def test_expected_dice_sees_members_that_hesitate_alike():
    """Members that all put a region at probability 0.6 agree perfectly (agreement 1) but their mean
    expects only 2 * 0.6 / 1.6 = 0.75 of its own mask; sure members (0 or 1) expect 1, and so does a
    channel nobody marks. The (Z, K, H, W) slice layout gives the same."""
    hesitant = np.zeros((3, 6, 8, 8), np.float32)  # (K, z, y, x): TC hesitant, WT sure, ET empty
    hesitant[0, 2:4, 2:6, 2:6] = 0.6
    hesitant[0, 0, 0, 0] = 0.3  # below the threshold: not in the mask, but it counts in sum(p)
    hesitant[1, 1:5, 1:7, 1:7] = 1.0
    stats = MemberStats(0.5)
    for _ in range(4):
        stats.add(hesitant)
    assert stats.agreement_per_channel() == [1.0, 1.0, 1.0]
    n = 2 * 4 * 4
    assert stats.expected_dice_per_channel() == pytest.approx([2 * 0.6 * n / (0.6 * n + 0.3 + n), 1.0, 1.0], abs=1e-6)
    slices = MemberStats(0.5, channel_axis=1)
    slices.add(np.moveaxis(hesitant, 0, 1))
    assert slices.expected_dice_per_channel() == pytest.approx(stats.expected_dice_per_channel(), abs=1e-12)


def test_ensemble_members_are_every_network_under_every_flip():
    x = np.random.default_rng(2).random((1, 4, 6, 8)).astype(np.float32)
    nets = [lambda v: v[:1] * 0.9, lambda v: np.roll(v[:1], 1, axis=-1)]  # the second is not flip-equivariant
    stats = flip_member_stats(nets, x, (1, 2, 3), (1, 2, 3), threshold=0.5)
    stacked = flip_members(nets, x, (1, 2, 3), (1, 2, 3))
    assert stats.n == len(stacked.probabilities) == 8
    np.testing.assert_array_equal(stats.mean, stacked.mean)
    assert stats.confidence() == pytest.approx(pairwise_dice(stacked.probabilities > 0.5), abs=1e-12)
    assert stats.confidence() < 1.0
    assert stats.disagreement().max() > 0


def test_streamed_members_keep_a_few_maps_not_one_per_member():
    """Twenty members (five networks x four flips) of a 3-channel map: the streamed statistics hold
    three float32 maps plus a bit per member, far less than the twenty maps stacking keeps."""
    import tracemalloc

    shape = (3, 32, 64, 64)
    one_map = 4 * int(np.prod(shape))
    rng = np.random.default_rng(3)
    tracemalloc.start()
    stats = MemberStats(0.5)
    for _ in range(20):
        stats.add(rng.random(shape, dtype=np.float32))  # each member is dropped once added
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert held < 4.5 * one_map, held / one_map
    assert stats.confidence() < 1.0


def test_members_are_flipped_back_onto_the_input():
    """A voxel-wise 'network' commutes with flips: members must be identical once each flip is undone."""
    x = np.random.default_rng(0).random((2, 3, 8, 9)).astype(np.float32)  # (C, z, y, x)

    def predict(v):
        return v[:1] ** 2

    members = flip_members(predict, x, (1, 2, 3), (1, 2, 3))
    assert members.probabilities.shape == (4, 1, 3, 8, 9)
    np.testing.assert_allclose(members.probabilities, np.broadcast_to(x[:1] ** 2, (4, 1, 3, 8, 9)))
    assert members.disagreement().max() == 0 and members.confidence(0.5) == 1.0


def test_lgg_members_mean_is_the_tta_prediction(lgg_patient):
    from napari_brainseg.engine.segment import segment_case

    tta, _ = segment_case(lgg_patient, device="cpu", tta=True, return_probabilities=True)
    result, _ = segment_case(lgg_patient, device="cpu", uncertainty=True, return_probabilities=True)
    np.testing.assert_allclose(result.probabilities, tta.probabilities, atol=1e-5)
    np.testing.assert_array_equal(result.labels, tta.labels)
    assert result.uncertainty.shape == result.labels.shape and result.uncertainty.dtype == np.float32
    assert 0 <= result.uncertainty.min() and result.uncertainty.max() <= 0.5
    # the members disagree somewhere near the tumour's edge, and far more there than far from it
    from scipy import ndimage

    edge = ndimage.binary_dilation(result.labels > 0, iterations=2) & ~ndimage.binary_erosion(result.labels > 0, iterations=2)
    far = ~ndimage.binary_dilation(result.labels > 0, iterations=20)
    assert result.uncertainty[edge].mean() > 10 * result.uncertainty[far].mean()
    assert 0.5 < result.confidence <= 1.0
    assert result.settings["uncertainty"] and result.settings["tta"]


def test_brats_uncertainty_on_the_full_grid():
    from napari_brainseg.engine.segment import segment
    from napari_brainseg.phantoms import make_brats_phantom

    phantom = make_brats_phantom((64, 72, 64), seed=3)
    stack = np.stack([phantom.images[m] for m in ("flair", "t1", "t1ce", "t2")]).astype(np.float32)
    steps = []
    result = segment(stack, "brats-unet3d", device="cpu", uncertainty=True, spacing=phantom.spacing,
                     progress=lambda d, t: steps.append((d, t)))
    assert result.uncertainty.shape == phantom.shape
    from napari_brainseg.engine.preprocess import brain_bounding_box

    (start, end), inside = brain_bounding_box(stack), np.zeros(phantom.shape, bool)
    inside[tuple(slice(s, e) for s, e in zip(start, end))] = True
    assert result.uncertainty[~inside].max() == 0 < result.uncertainty[inside].max()  # put back where the crop was
    assert 0 <= result.confidence <= 1
    done, total = zip(*steps)
    assert list(done) == sorted(done) and done[-1] == total[-1] and len(set(total)) == 1  # one bar, 4 members
