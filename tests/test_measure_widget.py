"""The "Measure tumour" dock widget and the layers it adds, in a real viewer: diameters of a ground-truth
labels layer as a shapes layer on the right slice, change between two layers, and the HTML report."""

from __future__ import annotations

import numpy as np
import pytest

from napari_brainseg.measure.rano import measure_labels

from .conftest import LGG_PATIENT


def add_measure_widget(viewer):
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-brainseg", "Measure tumour")
    return widget


@pytest.fixture
def lgg_viewer(make_napari_viewer, lgg_patient):
    viewer = make_napari_viewer()
    viewer.open(str(lgg_patient), plugin="napari-brainseg")
    return viewer


def test_diameters_of_a_ground_truth_layer(lgg_viewer):
    mask = lgg_viewer.layers[f"{LGG_PATIENT} mask"]
    widget = add_measure_widget(lgg_viewer)
    widget.labels.value = mask
    widget.measure()
    shapes = lgg_viewer.layers[-1]
    assert shapes._type_string == "shapes" and "1 lesion(s)" in shapes.name
    expected = measure_labels(mask.data, "lgg", (1, 1, 1))
    lesion = expected.largest
    assert len(shapes.data) == 2 * min(expected.n_lesions, 5) and expected.n_lesions >= 1
    np.testing.assert_allclose(shapes.data[0], [lesion.longest.start, lesion.longest.end])
    np.testing.assert_allclose(shapes.data[1], [lesion.perpendicular.start, lesion.perpendicular.end])
    assert list(shapes.features["diameter"][:2]) == ["longest", "perpendicular"]
    assert lgg_viewer.dims.current_step[0] == lesion.slice_index  # the slider jumps to the measured slice
    assert f"{lesion.longest.length_mm:.1f} x {lesion.perpendicular.length_mm:.1f} mm" in widget.output.value
    assert "1 mm" in widget.output.value  # the LGG spacing is an assumption and says so


def test_compare_two_layers_and_refuse_mismatched(lgg_viewer, errors):
    mask = lgg_viewer.layers[f"{LGG_PATIENT} mask"]
    smaller = mask.data.copy()
    smaller[:, :, : smaller.shape[2] // 2 + 8] = 0  # cut away most of the lesion
    follow = lgg_viewer.add_labels(smaller, name="follow-up", metadata={"label_convention": "lgg"})
    widget = add_measure_widget(lgg_viewer)
    widget.labels.value, widget.follow_up.value = mask, follow
    widget.compare()
    assert f"{LGG_PATIENT} mask -> follow-up" in widget.output.value and "not a clinical assessment" in widget.output.value
    assert "sum of products" in widget.output.value
    brats = lgg_viewer.add_labels(np.where(mask.data > 0, 4, 0).astype(np.uint8), name="brats-like")
    widget.follow_up.value = brats
    widget.compare()
    assert errors and "compare like with like" in errors[-1]


def test_report_from_layers(lgg_viewer, tmp_path):
    widget = add_measure_widget(lgg_viewer)
    widget.labels.value = lgg_viewer.layers[f"{LGG_PATIENT} mask"]
    widget.report_path.value = tmp_path / "gt_report"
    widget.write_report()
    text = (tmp_path / "gt_report.html").read_text()
    assert f"image layer</td><td>{LGG_PATIENT} FLAIR" in text and "Research use only" in text
    assert "none recorded" in text  # a ground-truth layer: no model ran


def test_segmentation_run_adds_uncertainty_and_diameters(make_napari_viewer, qtbot, lgg_patient, errors, tmp_path):
    from .helpers import add_widget
    from .widget_helpers import run_and_wait, shoot

    viewer = make_napari_viewer()
    viewer.open(str(lgg_patient), plugin="napari-brainseg")
    widget = add_widget(viewer)
    widget.uncertainty.value = True
    run_and_wait(qtbot, widget)
    qtbot.waitUntil(lambda: "Confidence" in widget.status.value, timeout=10_000)
    assert not errors
    result = viewer.layers[f"{LGG_PATIENT} tumour (lgg-unet2d)"]
    heat = viewer.layers[f"{result.name} uncertainty"]
    assert not heat.visible and heat.data.shape == result.data.shape and 0 < heat.data.max() <= 0.5
    confidence = result.metadata["confidence"]
    assert f"Confidence: {confidence:.3f}" in widget.status.value and result.metadata["settings"]["uncertainty"]
    # the "check" flag beside it (LGG: the tumour's own expected Dice), the line of the run's own value
    from napari_brainseg.engine.check_flag import CHECK_THRESHOLDS, CheckFlag

    check = CheckFlag.from_record(result.metadata["check"])
    assert check.region == "tumour" and check.threshold == CHECK_THRESHOLDS["tumour"] and 0 < check.expected_dice <= 1
    assert f"Note: {check.line()}" in widget.status.value
    shoot(viewer, "dock_check_flag.png")
    # the diameters of the result, on request, and its report with confidence, disagreement map and Dice
    measure = add_measure_widget(viewer)
    measure.labels.value = result
    measure.measure()
    shapes = [layer for layer in viewer.layers if layer.name.startswith(f"{result.name} RANO diameters")]
    assert len(shapes) == 1 and shapes[0].metadata["rano"] == measure_labels(result.data, "lgg").as_dict()
    measure.report_path.value = tmp_path / "run.html"
    measure.write_report()
    text = (tmp_path / "run.html").read_text()
    assert f"Confidence <b>{confidence:.3f}</b>" in text and "member disagreement" in text
    assert check.line().replace("'", "&#x27;") in text
    assert "lgg-unet2d" in text
    # Dice per class against the truth layer the run used: the run's own results rows, with both volumes
    from napari_brainseg.plugin.results_record import caption, csv_rows

    from .test_report import reference_table

    record = result.metadata["results"]
    [row] = record["rows"]
    assert reference_table(text)[row["class"]] == pytest.approx((row["volume_ml"], row["truth_ml"], row["dice"]), abs=0.006)
    assert row["dice"] == pytest.approx(result.metadata["dice"]["tumour"])
    # the confidence is part of the run's record: the results caption and its CSV rows
    assert record["confidence"] == confidence and f"confidence {confidence:.3f}" in caption(record)
    assert all(r["confidence"] == confidence for r in csv_rows(record))
    assert f"; {check.summary()}" in caption(record) and CheckFlag.from_record(record["check"]) == check
    assert all(r["check_expected_dice"] == check.expected_dice and r["check_flag"] == ("yes" if check.raised else "no")
               for r in csv_rows(record))
    assert widget.results.caption.value == caption(record)
