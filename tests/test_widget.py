"""The dock widget in a real napari viewer (Xvfb): added through the manifest, run on real cases on
the CPU, with the event loop watched while the worker runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from qtpy.QtCore import QTimer

from napari_brainseg.plugin.layer_names import brats_modality, lgg_channel, looks_like_brats_2023

from .helpers import add_widget, shown_whole_in_a_toast
from .model_card import BRATS_VAL_CASE, LGG_VAL_PATIENT, assert_matches_card, brats_dice, lgg_dice

# Longest main-thread stall tolerated while a run is in flight. The target is 100 ms, measured
# by benchmarks/widget_responsiveness.py (33-75 ms while the network runs, 89-127 ms while napari adds
# the result layer, itself 121-133 ms for a plain viewer.add_labels on this 2-core machine). On a
# loaded machine (two trainings beside the tests) the OS alone starved the main thread for up to
# 434 ms, so the test bound is 1 s: it still catches a frozen viewer (the model on the main thread
# stalls for the whole run, 1-3 s for an LGG patient, 3-17 s for a BraTS case; importing torch and
# MONAI there at the first Run stalled 1.3 s) without failing on machine load.
MAX_EVENT_LOOP_GAP_S = float(os.environ.get("BRAINSEG_MAX_GAP_S", "1.0"))
RUN_TIMEOUT_MS = 180_000


class GapRecorder:
    """A 20 ms QTimer on the main thread; the longest interval between its ticks is the worst stall."""

    def __init__(self):
        self.gaps: list[float] = []
        self._last = time.perf_counter()
        self.timer = QTimer()
        self.timer.setInterval(20)
        self.timer.timeout.connect(self._tick)

    def _tick(self):
        now = time.perf_counter()
        self.gaps.append(now - self._last)
        self._last = now

    def __enter__(self):
        self._last = time.perf_counter()
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.stop()

    @property
    def max_gap(self) -> float:
        return max(self.gaps) if self.gaps else float("inf")


def shoot(viewer, name):
    """Keep a picture of the whole window for docs/screenshots when BRAINSEG_SCREENSHOTS names a folder."""
    folder = os.environ.get("BRAINSEG_SCREENSHOTS")
    if folder:
        from qtpy.QtWidgets import QApplication

        for _ in range(5):  # a dock added just now is laid out and painted first
            QApplication.processEvents()
            time.sleep(0.05)
        viewer.window._qt_window.grab().save(os.path.join(folder, name))


def run_and_wait(qtbot, widget, during=None):
    with GapRecorder() as gaps:
        widget.run()
        assert widget.is_running and not widget.run_button.enabled and widget.cancel_button.enabled
        if during is not None:
            qtbot.waitUntil(lambda: widget.progress.value > 0 or not widget.is_running, timeout=RUN_TIMEOUT_MS)
            during()
            gaps._last = time.perf_counter()  # the screenshot's own rendering is not a stall of the run
        qtbot.waitUntil(lambda: not widget.is_running, timeout=RUN_TIMEOUT_MS)
    print(f"max event-loop gap during the run: {gaps.max_gap * 1000:.0f} ms over {len(gaps.gaps)} ticks")
    assert widget.run_button.enabled and not widget.cancel_button.enabled
    return gaps


def test_lgg_patient_run(make_napari_viewer, qtbot, data_dir, errors, tmp_path, monkeypatch):
    viewer = make_napari_viewer(show=bool(os.environ.get("BRAINSEG_SCREENSHOTS")))
    viewer.open(str(data_dir / "lgg" / "kaggle_3m" / LGG_VAL_PATIENT), plugin="napari-brainseg")
    widget = add_widget(viewer)
    assert widget.model.value == "lgg-unet2d"  # guessed from the layers
    assert {c: p.value.name for c, p in widget.lgg_pickers.items()} == {
        c: f"{LGG_VAL_PATIENT} {c}" for c in ("pre-contrast", "FLAIR", "post-contrast")
    }
    shoot(viewer, "dock_before_run.png")
    name = f"{LGG_VAL_PATIENT} tumour (lgg-unet2d)"
    viewer.add_labels(np.zeros((2, 2), np.uint8), name=name)  # an existing name is never replaced
    steps = []
    widget._relay.step.connect(lambda done, total: steps.append((done, total)))
    gaps = run_and_wait(qtbot, widget, during=lambda: shoot(viewer, "dock_during_run.png"))
    assert not errors
    assert steps and steps[-1][0] == steps[-1][1] > 0  # the progress bar was fed to completion
    layer = viewer.layers[f"{name} [2]"]
    truth = viewer.layers[f"{LGG_VAL_PATIENT} mask"].data
    assert layer.data.shape == truth.shape and layer.data.dtype == np.uint8
    dice = lgg_dice(layer.data, truth)
    assert_matches_card("lgg-unet2d", LGG_VAL_PATIENT, dice)
    assert layer.metadata["dice"]["tumour"] == pytest.approx(dice["dice"])
    assert layer.metadata["model"] == "lgg-unet2d" and layer.metadata["settings"]["device"] == "cpu"
    assert layer.metadata["brainseg"]["slice_numbers"] == list(range(1, truth.shape[0] + 1))
    assert gaps.max_gap < MAX_EVENT_LOOP_GAP_S
    shoot(viewer, "dock_after_run.png")

    # issue 17 (3): the dock's bar went to the end; the results table is readable, kept, copyable, exportable
    dice = dice["dice"]
    assert widget.progress.value == widget.progress.max == steps[-1][1]
    record = layer.metadata["results"]
    assert widget.results.record is record and record["truth"] == f"{LGG_VAL_PATIENT} mask"
    assert record["model"] == "lgg-unet2d" and record["device"] == "cpu" and record["run_time_s"] > 0
    (row,) = record["rows"]
    assert row["class"] == "FLAIR abnormality (tumour)" and row["dice"] == pytest.approx(dice)
    assert row["volume_ml"] == pytest.approx(np.count_nonzero(layer.data) * 1e-3)  # kaggle_3m: 1 mm assumed
    assert row["truth_ml"] == pytest.approx(np.count_nonzero(truth) * 1e-3)
    shown = widget.results.table.to_dict("records")[0]
    assert shown["Dice"] == f"{dice:.3f}" and shown["truth mL"] == f"{row['truth_ml']:.2f}"
    from qtpy.QtCore import QLocale

    drawn = widget.results.table.native.itemDelegate()  # what the table paints, not only what it holds
    assert [drawn.displayText(shown[c], QLocale()) for c in ("Dice", "truth mL")] == [shown["Dice"], shown["truth mL"]]
    widget.results.copy_button.clicked.emit()
    from qtpy.QtWidgets import QApplication

    copied = QApplication.clipboard().text()
    assert copied.splitlines()[1].split("\t")[:5] == ["case", "class", "volume_ml", "truth_ml", "dice"]
    assert f"{dice:.4f}" in copied
    csv_path = widget.results.export(path=str(tmp_path / "volumes"))
    assert csv_path.endswith("volumes.csv") and f"{dice:.4f}" in Path(csv_path).read_text()

    # issue 17 (4): the prediction is drawn as outlines; one click puts it over the filled truth
    assert layer.contour > 0 and widget.compare_button.enabled
    viewer.layers[f"{LGG_VAL_PATIENT} mask"].visible = False
    widget.compare_button.clicked.emit()
    mask_layer = viewer.layers[f"{LGG_VAL_PATIENT} mask"]
    assert mask_layer.visible and mask_layer.contour == 0 and mask_layer.opacity < 1
    assert viewer.layers[-1] is layer and viewer.layers[-2] is mask_layer
    viewer.dims.set_point(0, int(np.argmax(truth.sum(axis=(1, 2)))))
    shoot(viewer, "prediction_vs_truth.png")

    # a later cancelled run keeps this result's table
    from napari_brainseg.engine import segment as engine_segment

    def cancelled(*_args, **_kwargs):
        raise InterruptedError("cancelled")

    monkeypatch.setattr(engine_segment, "segment", cancelled)
    widget.run()
    qtbot.waitUntil(lambda: not widget.is_running, timeout=RUN_TIMEOUT_MS)
    assert widget.status.value == "Cancelled." and widget.results.record is record


def test_lgg_single_rgb_slice(make_napari_viewer, qtbot, data_dir, errors):
    import tifffile

    viewer = make_napari_viewer()
    plane = tifffile.imread(data_dir / "lgg" / "kaggle_3m" / LGG_VAL_PATIENT / f"{LGG_VAL_PATIENT}_8.tif")
    viewer.add_image(plane, rgb=True, name="slice 8", scale=(0.5, 0.5))
    widget = add_widget(viewer)
    assert widget.model.value == "lgg-unet2d" and widget.lgg_rgb.value.name == "slice 8"
    run_and_wait(qtbot, widget)
    layer = viewer.layers["slice 8 tumour (lgg-unet2d)"]
    assert layer.data.shape == plane.shape[:2] and tuple(layer.scale) == (0.5, 0.5)
    assert not errors
    # the tumour on this slice is found: Dice 0.959 against its mask when written (the slice alone is
    # normalised on its own, so the patient's card value does not apply)
    mask = tifffile.imread(data_dir / "lgg" / "kaggle_3m" / LGG_VAL_PATIENT / f"{LGG_VAL_PATIENT}_8_mask.tif")
    assert lgg_dice(layer.data, mask)["dice"] > 0.9


def test_brats_case_run(make_napari_viewer, qtbot, brats18_case, errors, tmp_path):
    viewer = make_napari_viewer()
    viewer.open(str(brats18_case), plugin="napari-brainseg")
    widget = add_widget(viewer)
    assert widget.model.value == "brats-unet3d"
    assert {m: p.value.name for m, p in widget.brats_pickers.items()} == {
        m: f"{BRATS_VAL_CASE} {m}" for m in ("flair", "t1", "t1ce", "t2")
    }
    flair = viewer.layers[f"{BRATS_VAL_CASE} flair"]
    started = time.perf_counter()
    with GapRecorder() as gaps:
        widget.run()
        viewer.layers.selection.active = viewer.layers[f"{BRATS_VAL_CASE} t2"]  # selection changes mid-run
        widget.brats_pickers["flair"].value = viewer.layers[f"{BRATS_VAL_CASE} t2"]  # so do the pickers
        qtbot.waitUntil(lambda: not widget.is_running, timeout=RUN_TIMEOUT_MS)
    print(f"BraTS widget run: {time.perf_counter() - started:.1f} s; max event-loop gap {gaps.max_gap * 1000:.0f} ms")
    assert gaps.max_gap < MAX_EVENT_LOOP_GAP_S
    assert not errors
    layer = viewer.layers[f"{BRATS_VAL_CASE} tumour (brats-unet3d)"]
    truth = viewer.layers[f"{BRATS_VAL_CASE} seg"].data
    assert layer.data.shape == truth.shape and layer.data.dtype == np.uint8
    assert set(np.unique(layer.data)) <= {0, 1, 2, 4}
    dice = brats_dice(layer.data, truth)
    assert_matches_card("brats-unet3d", BRATS_VAL_CASE, dice)  # TC, WT and ET: label values and channels right
    assert {k: layer.metadata["dice"][k] for k in ("TC", "WT", "ET")} == pytest.approx(
        {k.removeprefix("dice_"): v for k, v in dice.items()})  # what the widget reports is the same
    np.testing.assert_array_equal(layer.scale, flair.scale)
    np.testing.assert_array_equal(layer.affine.affine_matrix, flair.affine.affine_matrix)
    np.testing.assert_allclose(layer.metadata["nifti_affine"], flair.metadata["nifti_affine"])
    assert layer.metadata["label_convention"] == "brats2018"
    assert layer.metadata["label_names"][4] == "enhancing tumour"
    np.testing.assert_allclose(layer.colormap.color_dict[4][:3], [1.0, 0.843, 0.0], atol=0.01)
    shown = {row["class"]: row for row in widget.results.table.to_dict("records")}
    assert set(shown) == {"necrotic / non-enhancing tumour core", "peritumoural edema", "enhancing tumour",
                          "WT (whole tumour)", "TC (tumour core)"}
    assert shown["WT (whole tumour)"]["Dice"] == f"{dice['dice_WT']:.3f}"
    assert layer.visible and viewer.layers.selection.active is layer  # ready to correct with the label tools

    # the plugin's writer saves the result with the source's geometry
    from napari_brainseg.io.writer import write_labels

    saved = write_labels(tmp_path / "result.nii.gz", layer)[0]
    source = nib.load(str(brats18_case / f"{BRATS_VAL_CASE}_flair.nii.gz"))
    np.testing.assert_allclose(nib.load(saved).affine, source.affine)

    # the widget's screenshot, for the record (see the test report)
    shot = os.environ.get("BRAINSEG_SCREENSHOT")
    if shot:
        viewer.window._qt_window.grab().save(shot)


def test_cancel_adds_no_layer(make_napari_viewer, qtbot, brats18_case, errors, monkeypatch):
    import napari.utils.notifications as notifications

    infos: list[str] = []
    monkeypatch.setattr(notifications, "show_info", infos.append)
    viewer = make_napari_viewer()
    viewer.open(str(brats18_case), plugin="napari-brainseg")
    widget = add_widget(viewer)
    before = [layer.name for layer in viewer.layers]
    steps = []
    widget._relay.step.connect(lambda done, total: steps.append((done, total)))
    with GapRecorder() as gaps:
        widget.run()
        assert not widget.run_button.enabled
        # the network is running: a window is done ((0, total) comes before the first one)
        qtbot.waitUntil(lambda: any(done > 0 for done, _ in steps), timeout=RUN_TIMEOUT_MS)
        widget.cancel()
        qtbot.waitUntil(lambda: not widget.is_running, timeout=RUN_TIMEOUT_MS)
    done, total = steps[-1]
    assert 0 < done < total, steps  # stopped part-way through the sliding window, not after it
    assert [layer.name for layer in viewer.layers] == before
    assert widget.status.value == "Cancelled." and widget.run_button.enabled
    assert infos == ["Segmentation cancelled"] and not errors and shown_whole_in_a_toast(infos[0])
    print(f"cancelled after {done} of {total} steps; max event-loop gap {gaps.max_gap * 1000:.0f} ms")


def test_docking_the_widget_does_not_import_torch():
    """torch and MONAI load in a background thread after docking; imported by the dock they freeze napari ~1 s."""
    code = "import sys, napari_brainseg.plugin.widget; print(sorted(m for m in ('torch', 'monai') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_result_steps_stop_when_the_layer_is_deleted(make_napari_viewer, qtbot, errors):
    """Deleting the result while it is still being placed neither errors nor leaves the widget running."""
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((64, 64, 3), np.uint8), rgb=True, name="slice")
    widget = add_widget(viewer)
    viewer.layers.events.inserted.connect(
        lambda event: "tumour" in event.value.name and QTimer.singleShot(0, lambda: viewer.layers.remove(event.value))
    )
    widget.run()
    qtbot.waitUntil(lambda: not widget.is_running, timeout=RUN_TIMEOUT_MS)
    assert [layer.name for layer in viewer.layers] == ["slice"] and not errors
    assert widget.run_button.enabled and "slice tumour" in widget.status.value


def test_result_is_shown_even_if_the_dock_closes_meanwhile(make_napari_viewer, qtbot, errors):
    """The layer is added hidden and shown one step later; closing the dock in between must not lose it."""
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((64, 64, 3), np.uint8), rgb=True, name="slice")
    dock, widget = viewer.window.add_plugin_dock_widget("napari-brainseg", "Segment tumour")
    closed = []
    widget.native.destroyed.connect(lambda *_: closed.append(True))
    viewer.layers.events.inserted.connect(
        lambda event: "tumour" in event.value.name
        and QTimer.singleShot(0, lambda: (viewer.window.remove_dock_widget(dock), widget.native.deleteLater()))
    )
    widget.run()
    name = "slice tumour (lgg-unet2d)"
    qtbot.waitUntil(lambda: bool(closed) and name in viewer.layers, timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(lambda: viewer.layers[name].visible, timeout=RUN_TIMEOUT_MS)
    assert not errors


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


def test_worker_error_is_one_notification(make_napari_viewer, qtbot, errors, error_details):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present; the error this provokes needs a machine without one")
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((64, 64, 3), np.uint8), rgb=True, name="slice")
    widget = add_widget(viewer)
    widget.device.value = "cuda"
    widget.run()
    qtbot.waitUntil(lambda: not widget.is_running, timeout=RUN_TIMEOUT_MS)
    assert errors == ["Segmentation failed; see Status"] and shown_whole_in_a_toast(errors[0])
    assert "no CUDA GPU is available" in error_details()[0] and "no CUDA GPU is available" in widget.status.value
    assert [layer.name for layer in viewer.layers] == ["slice"]
    assert widget.run_button.enabled


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
