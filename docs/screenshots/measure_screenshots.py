"""Regenerate the measurement screenshots (needs a display: run under xvfb-run).

    BRAINSEG_DATA=/work/shared/data xvfb-run -a python docs/screenshots/measure_screenshots.py BRATS_CASE LGG_PATIENT
    xvfb-run -a python docs/screenshots/measure_screenshots.py --brats-uncertainty BRATS_CASE

1. measure_diameters.png: a BraTS case's ground truth measured in the "Measure tumour" dock widget
   (RANO diameters as a shapes layer on the slice they were measured on).
2. uncertainty_layer.png: an LGG patient segmented with uncertainty=True, the (normally hidden)
   disagreement layer shown over FLAIR with the result as outlines.
3. uncertainty_brats.png (``--brats-uncertainty``): the same for a BraTS case, the result filled, the
   case's own segmentation as outlines, on the axial slice where the predicted core is largest.
"""

import sys
from pathlib import Path

import napari
import numpy as np

OUT = Path(__file__).parent


def _settle() -> None:
    """Let Qt lay out the docks and drop the start-up notification before the screenshot."""
    from napari.utils.notifications import notification_manager
    from qtpy.QtWidgets import QApplication

    notification_manager.records.clear()
    for _ in range(20):
        QApplication.processEvents()


def diameters(case: str) -> None:
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1500, 950)
    viewer.open(case, plugin="napari-brainseg")
    seg = next(layer for layer in viewer.layers if layer.name.endswith(" seg"))
    for layer in viewer.layers:
        layer.visible = layer is seg or layer.name.endswith(" flair")
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-brainseg", "Measure tumour")
    widget.labels.value = seg
    widget.measure()
    seg.opacity = 0.45
    lesion = viewer.layers[-1].metadata["rano"]["largest"]
    viewer.camera.zoom = 3.0
    viewer.camera.center = (0, *np.mean(viewer.layers[-1].data[0][:, 1:], axis=0))
    print(lesion)
    _settle()
    viewer.screenshot(str(OUT / "measure_diameters.png"), canvas_only=False)
    viewer.close()


def uncertainty(patient: str) -> None:
    from napari_brainseg.engine.segment import segment_case
    from napari_brainseg.plugin.layer_style import labels_layer_kwargs
    from napari_brainseg.plugin.measure_layers import add_result_extras

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1500, 950)
    viewer.open(patient, plugin="napari-brainseg")
    flair = next(layer for layer in viewer.layers if layer.name.endswith(" FLAIR"))
    for layer in list(viewer.layers):
        layer.visible = layer is flair
    result, _case = segment_case(patient, device="cpu", uncertainty=True)
    labels = viewer.add_labels(result.labels, **labels_layer_kwargs(result, like=flair))
    labels.contour = 1
    added = add_result_extras(viewer, result, labels)
    heat = added[0]
    heat.visible = True
    viewer.layers.selection.active = heat
    z = int((result.labels > 0).reshape(result.labels.shape[0], -1).sum(1).argmax())
    viewer.dims.current_step = (z, *viewer.dims.current_step[1:])
    viewer.camera.zoom = 2.5
    flair.opacity = 0.6  # additive heat over a bright FLAIR tumour would saturate to white
    print("confidence", result.confidence)
    _settle()
    viewer.screenshot(str(OUT / "uncertainty_layer.png"), canvas_only=False)
    viewer.close()


def uncertainty_brats(case: str) -> None:
    from napari_brainseg.conventions import brats_labels_to_regions
    from napari_brainseg.engine.segment import segment_case
    from napari_brainseg.plugin.layer_style import labels_layer_kwargs
    from napari_brainseg.plugin.measure_layers import add_result_extras

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1500, 950)
    viewer.open(case, plugin="napari-brainseg")
    flair = next(layer for layer in viewer.layers if " flair" in layer.name)
    truth = next(layer for layer in viewer.layers if layer.name.endswith(" seg"))
    for layer in list(viewer.layers):
        layer.visible = layer in (flair, truth)
    truth.contour = 2  # the case's own segmentation as outlines, the result filled under the heat
    result, _case = segment_case(case, device="cpu", uncertainty=True)
    labels = viewer.add_labels(result.labels, **labels_layer_kwargs(result, like=flair))
    labels.opacity = 0.45
    heat = add_result_extras(viewer, result, labels)[0]
    heat.visible = True
    viewer.layers.selection.active = heat
    core = brats_labels_to_regions(result.labels, result.label_convention)[0]
    z = int(core.reshape(core.shape[0], -1).sum(1).argmax())
    viewer.dims.current_step = (z, *viewer.dims.current_step[1:])
    centre = flair.data_to_world((z, *np.argwhere(core[z]).mean(0)))  # the reader places the volume by its affine
    viewer.camera.center = tuple(centre)
    viewer.camera.zoom = 5.0
    flair.opacity = 0.6
    print("confidence", result.confidence, "slice", z)
    _settle()
    viewer.screenshot(str(OUT / "uncertainty_brats.png"), canvas_only=False)
    viewer.close()


if __name__ == "__main__":
    if sys.argv[1] == "--brats-uncertainty":
        uncertainty_brats(sys.argv[2])
    else:
        diameters(sys.argv[1])
        uncertainty(sys.argv[2])
