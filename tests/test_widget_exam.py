"""A DICOM exam whose series lie on different grids, segmented in the dock widget (issue 11): the pickers
fill with the series by what their descriptions say, Run brings them onto the FLAIR series' grid in the
worker (as the CLI does), the result overlays the FLAIR series and equals the CLI's labels, and the notes
say which series became which; a series the user picks against its description is named as such.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_brainseg.plugin.job import collect_job

from .helpers import add_widget
from .test_series_inputs import mixed_exam  # noqa: F401 - the fixture

RUN_TIMEOUT_MS = 300_000


@pytest.fixture(scope="module")
def cli_labels(mixed_exam):  # noqa: F811
    from napari_brainseg.engine.segment import segment_case
    from napari_brainseg.io.dicom import read_dicom_exam

    # what `napari-brainseg predict EXAM --fast` writes: one network, as the widget below runs it
    result, _ = segment_case(read_dicom_exam(mixed_exam), device="cpu", fast=True)
    return result.labels


def test_exam_on_mixed_grids_segments_in_the_widget(make_napari_viewer, qtbot, mixed_exam, cli_labels, errors):  # noqa: F811
    viewer = make_napari_viewer()
    viewer.open(str(mixed_exam), plugin="napari-brainseg")
    widget = add_widget(viewer)
    assert widget.model.value == "brats-unet3d"
    picked = {m: p.value.name for m, p in widget.brats_pickers.items()}
    assert picked == {"t1": "EXAM2 t1 (series 1)", "t2": "EXAM2 t2 (series 2)", "flair": "EXAM2 flair (series 3)",
                      "t1ce": "EXAM2 t1ce (series 4)"}
    assert len({viewer.layers[name].data.shape for name in picked.values()}) == 4  # four grids
    widget.fast.value = True
    widget.run()
    assert not errors  # not refused for its different shapes
    qtbot.waitUntil(lambda: not widget.is_running, timeout=RUN_TIMEOUT_MS)
    assert not errors
    flair = viewer.layers["EXAM2 flair (series 3)"]
    [result] = [layer for layer in viewer.layers if layer.metadata.get("brainseg", {}).get("kind") == "prediction"]
    assert result.data.shape == flair.data.shape
    np.testing.assert_array_equal(result.data, cli_labels)  # the widget segments the exam like the CLI
    for a, b in ((result.scale, flair.scale), (result.translate, flair.translate),
                 (result.affine.affine_matrix, flair.affine.affine_matrix)):
        np.testing.assert_allclose(a, b)  # it lies on the FLAIR series, where the scanner put it
    status = widget.status.value
    assert "FLAIR: series 'AX T2 FLAIR' (layer 'EXAM2 flair (series 3)')" in status
    assert "layer 'EXAM2 t1 (series 1)' ((51, 187, 158), 3 x 1 x 1 mm) is on another grid than flair" in status

    # the user's override: the T1 and T1 post-contrast series swapped in the pickers, as --series does in the CLI
    widget.brats_pickers["t1"].value = viewer.layers["EXAM2 t1ce (series 4)"]
    widget.brats_pickers["t1ce"].value = viewer.layers["EXAM2 t1 (series 1)"]
    job = collect_job(widget.model.value, *widget._picks(), widget._labels_layers(), device="cpu", tta=False)
    assert "T1: series 'T1 AX POST GD' (layer 'EXAM2 t1ce (series 4)'), as chosen in the picker " \
           "(its description reads as T1 post-contrast)" in job.series_notes
