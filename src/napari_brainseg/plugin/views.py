"""Anatomical viewing in napari: axis names, the head upright in every plane, the full contrast range.

napari draws a 2D plane with the row index growing downwards, whichever axes are shown. With the
NIfTI geometry our readers keep, each napari axis has an anatomical direction (``nib.aff2axcodes``),
and each world axis one through the layer's placement (``world_codes``), so the camera can put superior (coronal, sagittal) or anterior (axial) at the top and the patient's
right on the screen's left, as radiology viewers do. An image opened after its labels goes under them.
napari also caps an image's contrast slider at
the limits a reader gives; the full data range is restored so the window can be widened.
Applied by :class:`ViewFitter`, which the dock widget attaches to its viewer.
"""

from __future__ import annotations

import numpy as np

# napari shows the axis with index growing downwards / to the right; these directions go up / right
_UP = {"S", "A"}  # superior on top (coronal, sagittal), anterior on top (axial)
_RIGHT = {"L", "P"}  # patient's left on the screen's right (radiological), posterior right (sagittal)
_NAMES = {"S": "inferior-superior", "I": "superior-inferior", "A": "posterior-anterior",
          "P": "anterior-posterior", "L": "right-left", "R": "left-right"}


def axis_codes(affine) -> tuple[str, str, str]:
    """The anatomical direction each napari axis (z, y, x) grows towards, e.g. ('S', 'P', 'L')."""
    import nibabel as nib

    return tuple(reversed(nib.aff2axcodes(np.asarray(affine, dtype=float))))


_OPPOSITE = {"S": "I", "I": "S", "A": "P", "P": "A", "L": "R", "R": "L"}


def world_codes(codes, rotation) -> tuple[str, str, str]:
    """The direction each world axis grows towards, for data axes with ``codes`` drawn through the layer's
    ``rotation`` (napari ``layer.affine``): readers place NIfTI files in patient coordinates (``placement``),
    so a file stored RAS is already flipped on screen and must not be turned a second time."""
    rotation = np.asarray(rotation, dtype=float)[:3, :3]
    out = []
    for row in rotation:
        axis = int(np.argmax(np.abs(row)))
        out.append(codes[axis] if row[axis] > 0 else _OPPOSITE[codes[axis]])
    return tuple(out)


def camera_orientation(codes, displayed) -> tuple[str, str]:
    """napari ``camera.orientation2d`` for the two displayed axes of a volume with these ``codes``."""
    vertical, horizontal = (codes[axis] for axis in displayed[-2:])
    return ("up" if vertical in _UP else "down", "right" if horizontal in _RIGHT else "left")


def full_contrast_range(layer) -> tuple[float, float] | None:
    """The data's min and max (finite values); None for an empty or constant image."""
    data = np.asarray(layer.data)
    finite = data[np.isfinite(data)] if data.dtype.kind == "f" else data
    if finite.size == 0 or finite.min() == finite.max():
        return None
    return float(finite.min()), float(finite.max())


class ViewFitter:
    """Keeps a viewer anatomical while our NIfTI volumes are open (see the module docstring)."""

    def __init__(self, viewer):
        self.viewer = viewer
        viewer.layers.events.inserted.connect(self._on_inserted)
        viewer.dims.events.order.connect(self.orient)
        viewer.dims.events.ndisplay.connect(self.orient)
        for layer in viewer.layers:
            self._widen(layer)
        self.orient()

    def _codes(self):
        """Axis codes of the newest open 3D layer with NIfTI geometry (None if there is none)."""
        for layer in reversed(list(self.viewer.layers)):
            affine = layer.metadata.get("nifti_affine") if isinstance(layer.metadata, dict) else None
            if affine is not None and layer.ndim == 3 and self.viewer.dims.ndim == 3:
                return world_codes(axis_codes(affine), layer.affine.affine_matrix)
        return None

    def _on_inserted(self, event):
        self._widen(event.value)
        self._labels_on_top(event.value)
        self.orient()

    def _labels_on_top(self, inserted):
        """An image opened after its case's labels (files opened one by one) goes under them."""
        from napari.layers import Image, Labels

        if not isinstance(inserted, Image) or "brainseg" not in inserted.metadata:
            return
        layers = self.viewer.layers
        below = [layer for layer in layers[: layers.index(inserted)] if isinstance(layer, Labels)]
        if below:
            layers.move(layers.index(inserted), min(layers.index(layer) for layer in below))

    def _widen(self, layer):
        from napari.layers import Image

        if isinstance(layer, Image) and "brainseg" in layer.metadata and not layer.rgb:
            full = full_contrast_range(layer)
            if full is not None:
                low, high = layer.contrast_limits_range
                layer.contrast_limits_range = (min(low, full[0]), max(high, full[1]))

    def orient(self, _event=None):
        codes = self._codes()
        if codes is None:
            return
        self.viewer.dims.axis_labels = [_NAMES.get(code, code) for code in codes]
        if self.viewer.dims.ndisplay == 2:
            self.viewer.camera.orientation2d = camera_orientation(codes, self.viewer.dims.displayed)
