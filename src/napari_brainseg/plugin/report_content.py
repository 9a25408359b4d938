"""The HTML report's content from napari layers: a labels layer, the image it was drawn on (its source
layer, else a same-grid FLAIR layer) and what the segmentation run left in the layer's metadata
(model, settings, confidence and its check flag, Dice). numpy only, so the report can be made on napari's main thread.
"""

from __future__ import annotations

import numpy as np

from .. import conventions as label_conventions
from ..engine.check_flag import CheckFlag
from ..io.report import ReportContent
from .measure_layers import layer_convention, layer_spacing, measure_layer


def source_image_layer(viewer, labels_layer):
    """The image the labels belong to: the recorded source layer, else a FLAIR-named layer on the same
    grid, else any image layer on the same grid; None when there is none."""
    from napari.layers import Image

    grid = tuple(labels_layer.data.shape)
    source = labels_layer.metadata.get("brainseg", {}).get("source_layer")
    images = [layer for layer in viewer.layers if isinstance(layer, Image)]
    same_grid = [layer for layer in images if tuple(layer.data.shape[: len(grid)]) == grid]
    for layer in same_grid:
        if layer.name == source:
            return layer
    flair = [layer for layer in same_grid if "flair" in layer.name.lower()]
    return (flair or same_grid or [None])[0]


def report_from_layers(viewer, labels_layer) -> ReportContent:
    labels = np.asarray(labels_layer.data)
    if labels.ndim == 2:
        labels = labels[None]
    image_layer = source_image_layer(viewer, labels_layer)
    if image_layer is None:
        raise ValueError(f"no image layer on the grid of '{labels_layer.name}' to draw the report on")
    image = np.asarray(image_layer.data)
    if image.ndim == labels_layer.ndim + 1:
        image = image[..., 1]  # a 3-channel LGG layer: FLAIR is its middle channel
    image = image.reshape(labels.shape)
    convention = layer_convention(labels_layer)
    scale, assumed = layer_spacing(labels_layer)
    spacing = tuple(scale[-3:]) if len(scale) >= 3 else (1.0, *scale)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    counts = np.bincount(labels.ravel().astype(np.int64), minlength=256)
    volumes = {c.name: float(counts[c.value]) * voxel_ml for c in label_conventions.CONVENTIONS[convention].classes}
    meta = labels_layer.metadata
    settings = meta.get("settings", {})
    model = {"model": meta.get("model", "none recorded (a labels layer not produced by a run)"),
             "device": settings.get("device", ""), "test-time augmentation": "flips" if settings.get("tta") else "off",
             "label convention": convention}
    inputs = {"labels layer": labels_layer.name, "image layer": image_layer.name,
              "grid (z, y, x)": " x ".join(map(str, labels.shape)),
              "voxel spacing (mm)": "unknown (1 mm assumed)" if assumed else " x ".join(f"{s:g}" for s in spacing)}
    recorded = dict(meta.get("dice") or {})  # the widget's {"against": truth layer, region: Dice, ...}
    reference = recorded.pop("against", None)
    dice = {k: float(v) for k, v in recorded.items()} or None
    # the run's results table against its truth layer: Dice per class and region, with both volumes
    rows = [row for row in (meta.get("results") or {}).get("rows", []) if "dice" in row] or None
    return ReportContent(
        case=meta.get("brainseg", {}).get("case_id") or labels_layer.name, image=image, image_name=image_layer.name,
        labels=labels, convention=convention, spacing=spacing, measurement=measure_layer(labels_layer),
        volumes_ml=volumes, inputs=inputs, model=model, confidence=meta.get("confidence"),
        check=CheckFlag.from_record(meta.get("check")),
        uncertainty=_uncertainty_of(viewer, labels_layer, labels.shape), dice=dice, reference_rows=rows,
        reference=reference, notes=list(meta.get("messages", [])),
    )


def _uncertainty_of(viewer, labels_layer, grid):
    name = f"{labels_layer.name} uncertainty"
    if name in viewer.layers and viewer.layers[name].data.size == int(np.prod(grid)):
        return np.asarray(viewer.layers[name].data).reshape(grid)
    return None
