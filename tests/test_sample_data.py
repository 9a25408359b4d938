"""The synthetic phantoms: deterministic, BraTS-like contrasts, and readable once written to disk."""

from __future__ import annotations

import numpy as np
import pytest

from napari_brainseg.phantoms import make_brats_phantom, make_lgg_phantom, write_brats_phantom, write_lgg_phantom
from napari_brainseg.plugin.readers import get_reader

from .helpers import layers_by_name


@pytest.fixture(scope="module")
def phantom():
    return make_brats_phantom((64, 72, 64), seed=3)


def test_phantom_is_deterministic(phantom):
    again = make_brats_phantom((64, 72, 64), seed=3)
    np.testing.assert_array_equal(again.seg, phantom.seg)
    np.testing.assert_array_equal(again.images["t1ce"], phantom.images["t1ce"])
    assert not np.array_equal(make_brats_phantom((64, 72, 64), seed=4).seg, phantom.seg)


def test_phantom_contrasts_mimic_brats(phantom):
    seg, images = phantom.seg, phantom.images
    assert set(np.unique(seg)) == {0, 1, 2, 4}
    brain = images["t1"] > 0
    healthy = brain & (seg == 0)

    def mean(modality, where):
        return float(images[modality][where].mean())

    assert mean("flair", seg == 2) > 1.5 * mean("flair", healthy)  # edema bright on FLAIR
    assert mean("t2", seg == 2) > mean("t2", healthy)  # ... and on T2
    assert mean("t1ce", seg == 4) > 1.4 * mean("t1ce", healthy)  # enhancing rim bright on T1ce
    assert mean("t1ce", seg == 1) < 0.6 * mean("t1ce", seg == 4)  # dark necrotic core
    assert np.all(images["flair"][~brain & (seg == 0)] == 0)  # skull-stripped background


def test_written_phantom_reads_as_a_brats_2018_case(phantom, tmp_path):
    folder = write_brats_phantom(tmp_path, phantom)
    assert sorted(p.name for p in folder.iterdir())[0] == f"{phantom.case_id}_flair.nii.gz"
    layers = layers_by_name(get_reader(str(folder))(str(folder)))
    seg, kwargs, kind = layers[f"{phantom.case_id} seg"]
    assert kind == "labels" and kwargs["metadata"]["label_convention"] == "brats2018"
    np.testing.assert_array_equal(seg, phantom.seg)
    np.testing.assert_array_equal(layers[f"{phantom.case_id} t2"][0], phantom.images["t2"])


def test_lgg_phantom_written_as_kaggle_3m_patient(tmp_path):
    lgg = make_lgg_phantom(n_slices=12, seed=1)
    assert lgg.image.shape == (12, 256, 256, 3) and lgg.image.dtype == np.uint8
    assert lgg.mask.any() and set(np.unique(lgg.mask)) == {0, 1}
    folder = write_lgg_phantom(tmp_path, lgg)
    assert (folder / f"{lgg.patient_id}_10_mask.tif").is_file()
    layers = layers_by_name(get_reader(str(folder))(str(folder)))
    np.testing.assert_array_equal(layers[f"{lgg.patient_id} FLAIR"][0], lgg.image[..., 1])
    np.testing.assert_array_equal(layers[f"{lgg.patient_id} mask"][0], lgg.mask)


def test_lgg_phantom_looks_like_kaggle_3m():
    """Issue 17 (9): 8-bit levels as measured on six kaggle_3m patients (head mean 42-75 per channel,
    FLAIR lesion 1.3-1.9x the head, lesion not brighter on pre/post-contrast), scalp fat bright on T1."""
    lgg = make_lgg_phantom()
    image, mask = lgg.image.astype(float), lgg.mask > 0
    head = (image[..., 1] > 10) & ~mask
    levels = [image[..., c][head].mean() for c in range(3)]
    assert all(40 < level < 90 for level in levels), levels
    assert image[..., 1][mask].mean() > 1.6 * levels[1]  # FLAIR-bright lesion
    assert image[..., 0][mask].mean() < levels[0] and image[..., 2][mask].mean() < levels[2]  # not enhancing
    middle = image[len(image) // 2, 128, :, 0]
    first = int(np.argmax(middle > 10))
    assert middle[first : first + 6].max() > 150  # the scalp's fat at the edge of the head, bright on T1
    assert 5 <= mask.any(axis=(1, 2)).sum() <= 14  # the lesion spans part of the stack, as in kaggle_3m


def test_shipped_models_find_the_phantom_tumours():
    """Issue 17 (9): the phantoms behave for the shipped models like real cases (validation Dice: LGG
    0.852, BraTS WT 0.866); the models were not tuned on them."""
    from napari_brainseg.engine.metrics import dice_per_channel
    from napari_brainseg.engine.segment import segment

    lgg = make_lgg_phantom()
    labels = segment(lgg.image, "lgg-unet2d", device="cpu").labels
    lgg_dice = dice_per_channel((labels > 0)[None], (lgg.mask > 0)[None])[0]
    brats = make_brats_phantom()
    stack = np.stack([brats.images[m] for m in ("flair", "t1", "t1ce", "t2")]).astype(np.float32)
    wt = dice_per_channel((segment(stack, "brats-unet3d", device="cpu", spacing=brats.spacing).labels > 0)[None],
                          (brats.seg > 0)[None])[0]
    print(f"phantom Dice: LGG {lgg_dice:.3f}, BraTS WT {wt:.3f}")
    # BraTS WT is cut at 0.2, chosen by cross-validation on 72 real cases, where the networks under-call
    # edema; on this phantom's clean edge it over-calls (WT 0.73, 21,409 voxels for 12,300 true; 0.93 at
    # a 0.6 cut - RUNS.md, session 10), which still finds the tumour
    assert lgg_dice > 0.85 and wt > 0.70
