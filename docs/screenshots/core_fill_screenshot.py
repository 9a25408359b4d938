"""Regenerate core_hole_fill.png (needs a display: run under xvfb-run).

    BRAINSEG_DATA=/work/shared/data xvfb-run -a python docs/screenshots/core_fill_screenshot.py BRATS_CASE

Three views of one axial slice of a BraTS case, side by side (napari grid): the case's own
segmentation, the shipped ensemble's result with the tumour core's holes left as predicted, and the
shipped result (``core_hole_fill="planes"``: the necrosis an enhancing rim encloses filled as core).
Each over T1ce, on the slice where filling adds the most core.
"""

import dataclasses
import sys
from pathlib import Path

import napari
import numpy as np

OUT = Path(__file__).parent


def main(case: str) -> None:
    from qtpy.QtWidgets import QApplication

    from napari_brainseg.conventions import brats_labels_to_regions, brats_regions_to_labels
    from napari_brainseg.engine.preprocess import postprocess
    from napari_brainseg.engine.registry import get_spec
    from napari_brainseg.engine.segment import segment_case
    from napari_brainseg.plugin.layer_style import labels_layer_kwargs

    result, _case = segment_case(case, device="cpu", return_probabilities=True)
    spec = get_spec(result.model)
    unfilled = brats_regions_to_labels(
        postprocess(result.probabilities, dataclasses.replace(spec, core_hole_fill=None)), result.label_convention)
    added = brats_labels_to_regions(result.labels, result.label_convention)[0] & ~brats_labels_to_regions(
        unfilled, result.label_convention)[0]
    z = int(added.reshape(added.shape[0], -1).sum(1).argmax())
    print("core voxels the fill adds:", int(added.sum()), "most on slice", z)

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1700, 800)
    viewer.open(case, plugin="napari-brainseg")
    t1ce = next(layer for layer in viewer.layers if " t1ce" in layer.name)
    truth = next(layer for layer in viewer.layers if layer.name.endswith(" seg"))
    image, truth_tuple = t1ce.as_layer_data_tuple(), truth.as_layer_data_tuple()
    style = labels_layer_kwargs(result, like=t1ce)
    viewer.layers.clear()
    # grid cells of two layers each (stride 2): T1ce under one segmentation
    for name, labels in (("case's own segmentation", None), ("core holes as predicted", unfilled),
                         ("shipped: core holes filled", result.labels)):
        viewer.add_image(image[0], **{**image[1], "name": f"T1ce ({name})", "visible": True})
        layer = (viewer.add_labels(truth_tuple[0], **{**truth_tuple[1], "name": name}) if labels is None
                 else viewer.add_labels(labels, **{**style, "name": name}))
        layer.opacity = 0.5
    grid, camera = viewer.canvas.grid, viewer.scene.camera
    grid.enabled, grid.stride, grid.shape = True, 2, (1, 3)
    viewer.dims.current_step = (z, *viewer.dims.current_step[1:])
    camera.center = tuple(t1ce.data_to_world((z, *np.argwhere(added[z]).mean(0))))
    camera.zoom = 4.0
    for _ in range(20):
        QApplication.processEvents()
    viewer.screenshot(str(OUT / "core_hole_fill.png"), canvas_only=False)  # the layer list names the panels
    viewer.close()


if __name__ == "__main__":
    main(sys.argv[1])
