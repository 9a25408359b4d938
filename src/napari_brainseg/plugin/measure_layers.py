"""Layers that show how a labels layer was measured and how sure the model was: the RANO-style
diameters as a shapes layer (two line segments per lesion, on the slice they were measured on) and
the members' disagreement map as an image layer, hidden by default.

Works on any labels layer - a prediction, a corrected one or a ground truth - from its data, its
label convention and its scale (mm per voxel).
"""

from __future__ import annotations

import numpy as np

from .. import conventions as label_conventions
from ..conventions import Convention
from ..measure.rano import Measurement, measure_labels

LONGEST_COLOR = "#00e5ff"  # cyan and magenta stand apart from every class colour
PERPENDICULAR_COLOR = "#ff40ff"
MAX_LESIONS_DRAWN = 5  # RANO's target lesions; the count in the name says how many there are


def layer_convention(layer) -> str:
    """The label convention of a labels layer: its metadata, else a guess from its values."""
    convention = layer.metadata.get("label_convention")
    if convention in label_conventions.CONVENTIONS:
        return convention
    return label_conventions.guess_brats_convention(np.asarray(layer.data)) or Convention.LGG


def layer_spacing(layer) -> tuple[tuple[float, ...], bool]:
    """(mm per voxel, assumed?) from the layer's scale; an all-ones scale on an LGG stack is an assumption."""
    scale = tuple(float(s) for s in layer.scale)
    info = layer.metadata.get("brainseg", {})
    assumed = bool(info.get("spacing_assumed")) or ("nifti_affine" not in layer.metadata and all(s == 1 for s in scale))
    return scale, assumed


def measure_layer(layer) -> Measurement:
    scale, assumed = layer_spacing(layer)
    m = measure_labels(np.asarray(layer.data), layer_convention(layer), scale)
    if assumed and not m.spacing_assumed:
        m.spacing_assumed = True
        m.notes.append("voxel spacing unknown: diameters assume 1 mm voxels")
    return m


def diameter_shapes(measurement: Measurement, labels_layer, name: str | None = None) -> tuple[list, dict]:
    """(data, add_shapes keyword arguments) for the measured lesions' diameters over ``labels_layer``."""
    lines, kinds, texts = [], [], []
    ndim = labels_layer.ndim
    for index, lesion in enumerate(measurement.lesions[: min(measurement.n_lesions, MAX_LESIONS_DRAWN)], start=1):
        for kind, segment in (("longest", lesion.longest), ("perpendicular", lesion.perpendicular)):
            ends = np.array([segment.start, segment.end])[:, -ndim:]
            lines.append(ends)
            kinds.append(kind)
            # one label per lesion (two would overlap at the shared bounding-box corner)
            texts.append(f"{index}: {lesion.longest.length_mm:.1f} x {lesion.perpendicular.length_mm:.1f} mm"
                         if kind == "longest" else "")
    label = name or f"{labels_layer.name} RANO diameters"
    summary = f"{measurement.n_lesions} lesion(s), sum of products {measurement.sum_of_products_mm2:.0f} mm²"
    kwargs = {
        "name": f"{label} ({summary})",
        "shape_type": "line",
        "edge_color": [LONGEST_COLOR if k == "longest" else PERPENDICULAR_COLOR for k in kinds],
        "edge_width": 1.5 * float(min(labels_layer.scale[-2:])),
        "features": {"diameter": kinds, "text": texts},
        "text": {"string": "{text}", "color": "white", "size": 10, "anchor": "upper_left"},
        "scale": tuple(labels_layer.scale),
        "translate": tuple(labels_layer.translate),
        "affine": np.asarray(labels_layer.affine.affine_matrix),
        "metadata": {"rano": measurement.as_dict(), "measured_layer": labels_layer.name},
    }
    return lines, kwargs


def add_diameter_layer(viewer, labels_layer, *, go_to_slice: bool = True):
    """Measure ``labels_layer``, draw its diameters and (optionally) move the slider to the largest
    lesion's slice. Returns (shapes layer or None when there is nothing to measure, measurement)."""
    measurement = measure_layer(labels_layer)
    if not measurement.n_lesions:
        return None, measurement
    lines, kwargs = diameter_shapes(measurement, labels_layer)
    layer = viewer.add_shapes(lines, **kwargs)
    if go_to_slice and labels_layer.ndim == 3:
        z_world = measurement.largest.slice_index * labels_layer.scale[0] + labels_layer.translate[0]
        step = list(viewer.dims.current_step)
        step[-3] = int(round((z_world - viewer.dims.range[-3].start) / viewer.dims.range[-3].step))
        viewer.dims.current_step = tuple(step)
    return layer, measurement


def uncertainty_layer_kwargs(result, labels_layer_kwargs: dict) -> dict:
    """An image layer of the members' disagreement on the result's grid, hidden until the user shows it."""
    name = labels_layer_kwargs.get("name", "result")
    return {
        "name": f"{name} uncertainty",
        "colormap": "inferno",
        "contrast_limits": (0.0, 0.5),  # the disagreement (std of probabilities) is at most 0.5
        "blending": "additive",
        "visible": False,
        "scale": labels_layer_kwargs.get("scale"),
        "translate": labels_layer_kwargs.get("translate"),
        "metadata": {"brainseg": {"kind": "uncertainty", "confidence": result.confidence,
                                  "what": "std of the flip-TTA members' probabilities, max over outputs"}},
    }


def add_result_extras(viewer, result, labels_layer) -> list:
    """Beside a fresh result layer: the members' disagreement, hidden, when the run kept them. The
    diameters are drawn on request (Measure tumour dock): a first shapes layer with text stalled napari's
    main thread for seconds under load right after a run (tests/test_widget_runs.py gap check)."""
    if result.uncertainty is None:
        return []
    kwargs = uncertainty_layer_kwargs(result, {"name": labels_layer.name, "scale": tuple(labels_layer.scale),
                                               "translate": tuple(labels_layer.translate)})
    heat = viewer.add_image(result.uncertainty, affine=np.asarray(labels_layer.affine.affine_matrix), **kwargs)
    labels_layer.metadata["confidence"] = result.confidence
    labels_layer.metadata["check"] = None if result.check is None else result.check.as_record()  # for the report
    viewer.layers.selection.active = labels_layer  # the result stays the layer the user works on
    return [heat]
