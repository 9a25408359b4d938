"""How a prediction looks next to its ground truth: the truth filled, the prediction as outlines.

Both use the same class colours, so the style tells them apart: outlines over a half-transparent fill
show at a glance where they agree (outline on the fill's edge) and where they do not.
"""

from __future__ import annotations

from .case_match import is_prediction, layer_case

OUTLINE_PX = 2
TRUTH_OPACITY = 0.5


def style_prediction(layer, *, has_truth: bool) -> None:
    """A prediction with a truth beside it is drawn as outlines; without one, filled (easier to read)."""
    if has_truth:
        layer.contour = OUTLINE_PX
        layer.opacity = 1.0


def find_truth_layer(viewer, prediction):
    name = prediction.metadata.get("results", {}).get("truth")
    return viewer.layers[name] if name and name in viewer.layers else None


def compare_with_truth(viewer, prediction) -> bool:
    """Show ``prediction`` as outlines directly above its truth (filled, half transparent) over the
    case's visible image; hide the other labels layers. False when the truth layer is gone."""
    from napari.layers import Image, Labels

    from . import notices

    truth = find_truth_layer(viewer, prediction)
    if truth is None:
        notices.warning("Its ground truth is no longer open", f"The ground-truth layer of '{prediction.name}' is no longer open.")
        return False
    case = layer_case(prediction)
    for layer in viewer.layers:
        if isinstance(layer, Labels) and layer not in (prediction, truth):
            layer.visible = False
        if isinstance(layer, Image) and layer_case(layer) != case and not is_prediction(layer):
            layer.visible = False
    truth.visible, truth.contour, truth.opacity = True, 0, TRUTH_OPACITY
    prediction.visible, prediction.contour, prediction.opacity = True, OUTLINE_PX, 1.0
    layers = viewer.layers
    layers.move(layers.index(truth), len(layers))  # truth on top of the images...
    layers.move(layers.index(prediction), len(layers))  # ...and the outlines on top of the truth
    viewer.layers.selection.active = prediction
    notices.info("Truth filled, prediction outlined", f"Filled: ground truth '{truth.name}'. Outlines: prediction '{prediction.name}'.")
    return True
