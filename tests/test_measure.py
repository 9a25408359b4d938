"""RANO-style measurements: analytic phantoms with known diameters and volumes (within a voxel) and
real ground-truth segmentations checked against scikit-image's independent Feret diameter."""

from __future__ import annotations

import numpy as np
import pytest

from napari_brainseg.measure.rano import bidimensional, measure_labels


def ellipsoid(shape, spacing, centre_mm, axes_mm, angle_deg=0.0):
    """Voxels whose centres lie inside an ellipsoid (semi-axes z, a, b in mm), a and b rotated in-plane."""
    z, y, x = np.meshgrid(*(np.arange(n) * s for n, s in zip(shape, spacing)), indexing="ij")
    t = np.deg2rad(angle_deg)
    dy, dx = y - centre_mm[1], x - centre_mm[2]
    a, b = dy * np.cos(t) + dx * np.sin(t), -dy * np.sin(t) + dx * np.cos(t)
    return ((z - centre_mm[0]) / axes_mm[0]) ** 2 + (a / axes_mm[1]) ** 2 + (b / axes_mm[2]) ** 2 <= 1


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (3.0, 0.8, 0.8), (2.0, 1.2, 0.9)])
@pytest.mark.parametrize("angle", [0.0, 30.0, 77.0])
def test_ellipsoid_diameters_and_volume_within_a_voxel(spacing, angle):
    mask = ellipsoid((60, 120, 120), spacing, (40, 50, 48), (15, 20, 10), angle)
    m = measure_labels(mask.astype(np.uint8) * 4, "brats2018", spacing)
    voxel = float(np.hypot(*spacing[1:]))  # one in-plane voxel diagonal
    assert m.n_lesions == 1 and m.target == "enhancing tumour"
    lesion = m.largest
    assert abs(lesion.slice_index * spacing[0] - 40) <= spacing[0]  # the equator is the largest slice
    assert lesion.longest.length_mm == pytest.approx(40, abs=voxel)
    assert lesion.perpendicular.length_mm == pytest.approx(20, abs=voxel)
    # the two segments are perpendicular and the first is along the ellipse's long axis
    d1 = (np.subtract(lesion.longest.end, lesion.longest.start) * spacing)[1:]
    d2 = (np.subtract(lesion.perpendicular.end, lesion.perpendicular.start) * spacing)[1:]
    assert abs(d1 @ d2) / (np.linalg.norm(d1) * np.linalg.norm(d2)) < 0.05
    axis = np.array([np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))])
    # within ~10 degrees: an ellipse's tips are flat, so the farthest voxel pair can sit a few voxels off-axis
    assert abs(d1 @ axis) / np.linalg.norm(d1) > 0.98
    expected_ml = 4 / 3 * np.pi * 15 * 20 * 10 / 1000
    assert lesion.volume_ml == pytest.approx(expected_ml, rel=0.03)
    assert m.sum_of_products_mm2 == pytest.approx(lesion.product_mm2)


def test_separate_lesions_are_counted_and_small_ones_are_not_measurable():
    spacing = (1.0, 1.0, 1.0)
    big = ellipsoid((40, 100, 100), spacing, (20, 30, 30), (8, 12, 12))
    small = ellipsoid((40, 100, 100), spacing, (20, 75, 75), (3, 4, 4))  # 8 mm across: not measurable
    labels = np.zeros(big.shape, np.uint8)
    labels[big] = 1  # LGG FLAIR abnormality
    labels[small] = 1
    m = measure_labels(labels, "lgg", spacing)
    assert m.n_lesions == 2
    assert [lesion.measurable for lesion in m.lesions] == [True, False]
    assert m.sum_of_products_mm2 == pytest.approx(m.lesions[0].product_mm2)
    assert m.as_dict()["n_measurable"] == 1
    labels[5, 90, 5] = 1  # an isolated voxel: a fragment, counted apart from the lesions
    m = measure_labels(labels, "lgg", spacing)
    assert (m.n_lesions, m.n_fragments) == (2, 1) and len(m.lesions) == 3
    assert m.lesions[-1].volume_ml == pytest.approx(0.001)


def test_target_class_only_and_empty_labels():
    labels = np.zeros((10, 50, 50), np.uint8)
    labels[3:7, 10:40, 10:40] = 2  # edema only: no enhancing tumour to measure
    m = measure_labels(labels, "brats2018", (1, 1, 1))
    assert m.n_lesions == 0 and m.sum_of_products_mm2 == 0 and m.largest is None
    assert measure_labels(labels, "brats2018", (1, 1, 1), region="whole").largest.longest.length_mm == pytest.approx(
        np.hypot(30, 30)
    )
    assert measure_labels(labels, "brats2018").spacing_assumed


def test_single_voxel_and_single_slice():
    mask = np.zeros((20, 20), bool)
    mask[5, 5] = True
    (start, end, length), (_, _, across) = bidimensional(mask, (0.5, 2.0))
    assert length == 2.0 and across == 0.5  # one voxel, edge to edge
    assert start == (5.0, 4.5) and end == (5.0, 5.5)
    mask[5, 5:15] = True  # a row of 10 voxels
    (_, _, length), (_, _, across) = bidimensional(mask, (0.5, 2.0))
    assert length == pytest.approx(20.0) and across == pytest.approx(0.5)
    assert measure_labels(mask.astype(np.uint8), "lgg", (0.5, 2.0)).largest.slice_index == 0


def _check_against_skimage(labels, convention, spacing):
    from scipy import ndimage
    from skimage.measure import regionprops

    from napari_brainseg.measure.rano import target_values

    m = measure_labels(labels, convention, spacing)
    assert m.n_lesions >= 1
    lesion = m.largest
    components, _ = ndimage.label(np.isin(labels, target_values(convention)[1]), structure=np.ones((3, 3, 3)))
    plane = components[lesion.slice_index]
    inside = np.argwhere(plane)
    # the lesion measured: the 3D component nearest to the longest diameter's start
    nearest = inside[np.argmin(((inside - np.array(lesion.longest.start[1:])) ** 2).sum(1))]
    mask = plane == plane[tuple(nearest)]
    # both segments end on the lesion's edge (within a voxel); between, they may cross a necrotic centre
    near = ndimage.binary_dilation(mask, structure=np.ones((3, 3)))
    for segment in (lesion.longest, lesion.perpendicular):
        for point in (segment.start, segment.end):
            assert near[tuple(int(round(v)) for v in point[1:])]
    # scikit-image's Feret diameter (convex hull of the pixels, isotropic pixels) is an independent check
    props = regionprops(mask.astype(np.uint8))[0]
    assert abs(props.feret_diameter_max * spacing[1] - lesion.longest.length_mm) <= np.sqrt(2) * spacing[1]
    assert lesion.perpendicular.length_mm <= lesion.longest.length_mm
    return m


def test_real_brats_ground_truth(brats18_case):
    from napari_brainseg.io.cases import read_case

    case = read_case(brats18_case)
    m = _check_against_skimage(case.seg, case.label_convention, case.spacing)
    assert m.largest.measurable


def test_real_lgg_ground_truth(lgg_patient):
    from napari_brainseg.io.cases import read_case

    case = read_case(lgg_patient)
    m = _check_against_skimage(case.mask, "lgg", (1.0, 1.0, 1.0))
    assert m.largest.longest.length_mm > 10
