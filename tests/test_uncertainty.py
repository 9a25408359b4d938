"""Uncertainty: the flip-TTA members kept apart, their disagreement map and the per-case confidence."""

from __future__ import annotations

import numpy as np
import pytest

from napari_brainseg.engine.uncertainty import flip_members, member_agreement


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
