"""Which layers go into a run (issue 17, point 2), decided without a viewer: cases from the readers'
metadata or the layer names, picker filling per case, and the one-sentence refusals."""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Image, Labels

from napari_brainseg.errors import BrainsegInputError
from napari_brainseg.plugin import case_match as match
from napari_brainseg.plugin.job import collect_job
from napari_brainseg.plugin.layer_names import case_from_name
from napari_brainseg.plugin.readers import brats_layers, lgg_layers


def _layers(tuples):
    return [Image(data, **kwargs) if kind == "image" else Labels(data, **kwargs) for data, kwargs, kind in tuples]


def _case(case_id, value, seg=True):
    images = {m: np.full((4, 6, 6), value, np.float32) for m in ("flair", "t1", "t1ce", "t2")}
    segmentation = np.zeros((4, 6, 6), np.uint8) if seg else None
    return _layers(brats_layers(case_id, images, segmentation, label_convention="brats2018", spacing=(1, 1, 1), source=None))


@pytest.fixture
def two_cases():
    return _case("A", 1.0), _case("B", 2.0)


def test_every_reader_layer_carries_its_case(two_cases):
    a, b = two_cases
    assert {match.layer_case(layer) for layer in a} == {"A"} and {match.layer_case(layer) for layer in b} == {"B"}
    lgg = _layers(lgg_layers("P", np.zeros((2, 8, 8, 3), np.uint8), np.zeros((2, 8, 8), np.uint8), [1, 2], None))
    assert {match.layer_case(layer) for layer in lgg} == {"P"}
    one_slice = _layers(lgg_layers("P", np.zeros((8, 8, 3), np.uint8), None, [12], None, title="P_12"))
    assert {match.layer_case(layer) for layer in one_slice} == {"P_12"}


@pytest.mark.parametrize(
    "name, case",
    [
        ("Brats18_2013_20_1_t1ce.nii", "Brats18_2013_20_1"),  # napari's builtin reader: the file stem
        ("BraTS-GLI-00001-000-t2f", "BraTS-GLI-00001-000"),
        ("BraTS-GLI-00001-000 t1ce (t1c)", "BraTS-GLI-00001-000"),
        ("TCGA_CS_4941_19960909 pre-contrast", "TCGA_CS_4941_19960909"),
        ("patient1_FLAIR_reg", "patient1_reg"),
        ("T2-FLAIR", ""),  # only a sequence name: no case to tell
    ],
)
def test_case_from_a_layer_name(name, case):
    assert case_from_name(name) == case


def test_pickers_follow_one_case(two_cases):
    a, b = two_cases
    images = [layer for layer in (*a, *b) if isinstance(layer, Image)]
    assert match.cases_of(images) == ["A", "B"]
    picks = match.pick_brats(images, "B")
    assert [layer.name for layer in picks.values()] == ["B flair", "B t1", "B t1ce", "B t2"]
    lgg = match.pick_lgg(images, "B")
    assert match.fitting_model(picks, lgg) == "brats-unet3d"
    assert match.run_label("brats-unet3d", picks, lgg) == "Run on B"


def test_mixed_cases_are_refused_in_one_sentence(two_cases):
    a, b = two_cases
    images = [layer for layer in (*a, *b) if isinstance(layer, Image)]
    picks = match.pick_brats(images, "A")
    picks["flair"] = match.pick_brats(images, "B")["flair"]  # only the FLAIR picker changed to case B
    assert match.run_label("brats-unet3d", picks, {}) == "Run (inputs from 2 cases)"
    with pytest.raises(BrainsegInputError) as info:
        collect_job("brats-unet3d", picks, {}, [], device="cpu", tta=False)
    message = str(info.value)
    assert "different cases" in message and "FLAIR from B" in message and "T1, T1ce, T2 from A" in message
    assert "\n" not in message


def test_one_layer_in_every_picker_is_refused(two_cases):
    a, _ = two_cases
    picks = dict.fromkeys(("flair", "t1", "t1ce", "t2"), a[0])
    with pytest.raises(BrainsegInputError, match="'A flair' is chosen as both FLAIR and T1"):
        collect_job("brats-unet3d", picks, {}, [], device="cpu", tta=False)


def test_the_job_takes_the_truth_of_its_own_case(two_cases):
    a, b = two_cases
    images = [layer for layer in (*a, *b) if isinstance(layer, Image)]
    labels = [layer for layer in (*a, *b) if isinstance(layer, Labels)]
    job = collect_job("brats-unet3d", match.pick_brats(images, "A"), {}, labels, device="cpu", tta=False)
    assert job.case == "A" and job.truth_name == "A seg" and job.source.name == "A"
    assert job.arrays[0] is a[0].data  # FLAIR first, referenced, not copied
