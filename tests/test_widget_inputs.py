"""Which layers the dock widget takes as a case's inputs, and the inputs it refuses before any worker
starts: modality and channel from layer names, the newest or selected case, mixed or missing inputs, 2D
layers into the 3D model, huge and RGBA layers - one short notification each, nothing added. The widget's
Qt-free job logic runs headless on the phantom's layers.

Tests marked ``hardening`` are rows of the troubleshooting table (``tests/hardening_catalogue.py``).
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_brainseg.plugin.layer_names import brats_modality, lgg_channel, looks_like_brats_2023

from .helpers import add_widget, shown_whole_in_a_toast
from .widget_helpers import names


@pytest.mark.parametrize(
    "name, modality",
    [
        ("Brats18_2013_20_1 flair", "flair"),  # our reader, 2018 case
        ("BraTS-GLI-00001-000 t1ce (t1c)", "t1ce"),  # our reader, 2023 case
        ("BraTS-GLI-00001-000 t1 (t1n)", "t1"),
        ("Brats18_2013_20_1_t1ce.nii", "t1ce"),  # napari builtin / napari-nifti: the file stem
        ("Brats18_2013_20_1_t1", "t1"),
        ("BraTS-GLI-00001-000-t2f", "flair"),
        ("BraTS-GLI-00001-000-t2w", "t2"),
        ("BRATS_001 T1gd", "t1ce"),  # Medical Segmentation Decathlon channel names
        ("T2-FLAIR", "flair"),
        ("Brats18_2013_20_1 seg", None),
    ],
)
def test_brats_modality_from_layer_name(name, modality):
    assert brats_modality(name) == modality


def test_lgg_channel_and_convention_from_layer_name():
    assert [lgg_channel(f"TCGA_CS_6290_20000917 {c}") for c in ("pre-contrast", "FLAIR", "post-contrast")] == [
        "pre-contrast", "FLAIR", "post-contrast"]
    assert looks_like_brats_2023("BraTS-GLI-00001-000-t2f") and not looks_like_brats_2023("Brats18_X_flair")


def test_widget_follows_the_newest_or_selected_case_and_refuses_mixed_inputs(
    make_napari_viewer, brats18_case, brats23_case, errors, error_details
):
    """Issue 17 (2): open case A, then B: the pickers follow B; selecting A's layer brings A back;
    one picker on another case, or one layer in every picker, is refused in one sentence."""
    from .conftest import BRATS18_CASE, BRATS23_CASE

    viewer = make_napari_viewer()
    viewer.open(str(brats18_case), plugin="napari-brainseg")
    widget = add_widget(viewer)
    assert widget.case.value == BRATS18_CASE and widget.run_button.text == f"Run on {BRATS18_CASE}"
    viewer.open(str(brats23_case), plugin="napari-brainseg")
    assert widget.case.value == BRATS23_CASE and widget.run_button.text == f"Run on {BRATS23_CASE}"
    assert all(p.value.name.startswith(BRATS23_CASE) for p in widget.brats_pickers.values())
    viewer.layers.selection.active = viewer.layers[f"{BRATS18_CASE} t1"]
    assert widget.case.value == BRATS18_CASE
    assert all(p.value.name.startswith(BRATS18_CASE) for p in widget.brats_pickers.values())

    widget.brats_pickers["flair"].value = viewer.layers[f"{BRATS23_CASE} flair (t2f)"]
    assert widget.run_button.text == "Run (inputs from 2 cases)"
    widget.run()
    assert not widget.is_running and errors == ["Inputs from 2 cases; choose one"]
    details = error_details()
    assert f"FLAIR from {BRATS23_CASE}" in details[0] and f"T1, T1ce, T2 from {BRATS18_CASE}" in details[0]
    for picker in widget.brats_pickers.values():
        picker.value = viewer.layers[f"{BRATS18_CASE} flair"]
    widget.run()
    assert not widget.is_running and errors[1] == "One layer is chosen for two inputs"
    assert "chosen as both FLAIR and T1" in error_details()[1]
    assert error_details()[1] in widget.status.value  # the refusal also stays readable in the dock
    assert all(shown_whole_in_a_toast(e) for e in errors)
    assert not [layer for layer in viewer.layers if "tumour" in layer.name]


@pytest.mark.hardening
def test_wrong_inputs_notify_and_add_nothing(make_napari_viewer, errors, error_details):
    viewer = make_napari_viewer()
    widget = add_widget(viewer)
    widget.model.value = "brats-unet3d"
    widget.run()  # no layer at all
    for name in ("flair", "t1", "t1ce", "t2"):
        viewer.add_image(np.ones((32, 32), np.float32), name=f"case {name}")
    widget.run()  # 2D layers into the 3D model
    viewer.layers.clear()
    for name in ("flair", "t1", "t1ce"):
        viewer.add_image(np.ones((8, 32, 32), np.float32), name=f"vol {name}")
    viewer.add_image(np.ones((8, 32, 30), np.float32), name="vol t2")
    for name, picker in widget.brats_pickers.items():
        picker.value = viewer.layers[f"vol {name}"]
    widget.run()  # shapes differ
    widget.model.value = "lgg-unet2d"
    for picker in widget.lgg_pickers.values():
        picker.value = None
    widget.lgg_rgb.value = None
    widget.run()  # no LGG input
    details = error_details()
    assert len(errors) == len(details) == 4
    assert "choose the FLAIR, T1, T1ce, T2" in details[0]
    assert "needs 3D volumes" in details[1] and "2D image" in details[1]
    assert "different shapes" in details[2]
    assert "3-channel layer or three single-channel layers" in details[3]
    assert details[3] in widget.status.value  # the full sentence stays readable in the dock
    # issue 17 (6): each notification is one short line that napari's toast shows whole
    assert errors == ["Choose the input layers", "Cannot run on these layers; see Status",
                      "Cannot run on these layers; see Status", "Choose the input layers"]
    assert all(shown_whole_in_a_toast(e) for e in errors)
    assert not widget.is_running
    assert [layer.name for layer in viewer.layers if "tumour" in layer.name] == []


@pytest.mark.hardening
def test_huge_layers_refused_before_the_worker(make_napari_viewer, slow, errors):
    viewer = make_napari_viewer()
    huge = np.broadcast_to(np.zeros(1, np.uint8), (400, 512, 512))  # one byte of memory
    for modality in ("flair", "t1", "t1ce", "t2"):
        viewer.add_image(huge, name=f"big {modality}", contrast_limits=(0, 1))
    widget = add_widget(viewer)
    assert widget.model.value == "brats-unet3d"
    widget.run()
    assert errors == ["Cannot run on these layers; see Status"]
    assert "too large to segment: 400 x 512 x 512" in widget.status.value and "'big flair'" in widget.status.value
    assert not widget.is_running and slow.calls == 0


@pytest.mark.hardening
def test_rgba_layer_is_not_offered_as_three_channels(make_napari_viewer, slow, errors):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((32, 32, 4), np.uint8), rgb=True, name="rgba slice")
    widget = add_widget(viewer)
    widget.model.value = "lgg-unet2d"
    assert widget.lgg_rgb.value is None
    widget.run()
    assert errors == ["Choose the input layers"] and "3-channel layer or three single-channel layers" in widget.status.value
    assert slow.calls == 0 and names(viewer) == ["rgba slice"]


def test_job_runs_headless_on_the_phantom_layers():
    """The widget's job logic without Qt or a viewer: the sample-data layers of the LGG phantom in, the case's
    pickers filled, checked inputs, the ground truth found, labels, a results record and Dice out, one-line
    errors for bad layers."""
    from napari.layers import Image, Labels

    from napari_brainseg.errors import BrainsegInputError
    from napari_brainseg.plugin.case_match import cases_of, check_inputs, fitting_model, pick_brats, pick_lgg
    from napari_brainseg.plugin.job import collect_job, compute
    from napari_brainseg.plugin.sample_data import lgg_phantom_layers

    layers = [{"image": Image, "labels": Labels}[kind](data, **kwargs) for data, kwargs, kind in lgg_phantom_layers()]
    images = [layer for layer in layers if isinstance(layer, Image)]
    (case,) = cases_of(images)
    brats, lgg = pick_brats(images, case), pick_lgg(images, case)
    assert fitting_model(brats, lgg) == "lgg-unet2d"
    inputs = check_inputs("lgg-unet2d", brats, lgg)
    assert [layer.name for layer in inputs] == [lgg[c].name for c in ("pre-contrast", "FLAIR", "post-contrast")]
    job = collect_job("lgg-unet2d", brats, lgg, layers, device="cpu", tta=False)
    assert job.truth is not None and job.truth_name.endswith("mask") and not job.spacing_known
    result, layer = compute(job, lambda done, total: None, lambda: False)
    assert layer.data.shape == inputs[0].data.shape and layer.metadata["dice"]["against"] == job.truth_name
    (row,) = layer.metadata["results"]["rows"]
    assert 0 <= row["dice"] <= 1 and layer.metadata["dice"]["tumour"] == row["dice"]
    flat = {m: Image(np.ones((32, 32), np.float32), name=f"c {m}") for m in ("flair", "t1", "t1ce", "t2")}
    with pytest.raises(BrainsegInputError, match="needs 3D volumes, but layer 'c flair' is a 2D image"):
        check_inputs("brats-unet3d", flat, {})
    odd = {"pre-contrast": flat["t1"], "FLAIR": flat["flair"], "post-contrast": Image(np.ones((8, 8)), name="c t1ce")}
    with pytest.raises(BrainsegInputError, match="different shapes"):
        check_inputs("lgg-unet2d", {}, odd)
