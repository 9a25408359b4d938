"""Labels-layer styles: a label convention's colours and class names, and a segmentation result as napari
labels-layer arguments, shared by the readers, the dock widget and scripts.

The layer takes the source image layer's scale, translate, affine and metadata (so the plugin's
writer saves it with the source's NIfTI geometry or as LGG mask slices), named classes, fixed
colours, and the model, settings and volumes in ``metadata``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from napari.utils.colormaps import DirectLabelColormap

from .. import conventions as label_conventions


def convention_layer_kwargs(convention: str) -> dict:
    """napari Labels-layer styling for ``convention``: fixed colours, class names as ``features``, and
    ``metadata`` with ``label_convention`` and ``label_names``."""
    table = label_conventions.CONVENTIONS[convention]
    names = {0: "background", **table.names()}
    return {
        "colormap": DirectLabelColormap(color_dict=table.colors()),
        "features": {"index": list(names), "class": list(names.values())},
        "metadata": {"label_convention": convention, "label_names": names},
    }


def case_name_of(info: dict) -> str | None:
    """The case in a layer's ``metadata["brainseg"]``, if the reader put one there: ``case`` (every reader's
    record; an LGG single slice is ``<patient>_<n>``), else the BraTS case or LGG patient id."""
    return info.get("case") or info.get("case_id") or info.get("patient_id")


@dataclass(frozen=True)
class SourceGeometry:
    """What the result layer inherits from its source layer, captured once (e.g. when Run is pressed)."""

    name: str  # the case or patient id when the plugin's reader opened it, else the layer name
    scale: tuple
    translate: tuple
    affine: np.ndarray
    metadata: dict = field(default_factory=dict)

    @classmethod
    def of(cls, layer) -> SourceGeometry:
        info = dict(layer.metadata.get("brainseg", {}))
        metadata = {k: v for k, v in layer.metadata.items() if k != "brainseg"}
        metadata["brainseg"] = {**info, "kind": "prediction", "source_layer": layer.name}
        return cls(
            name=case_name_of(info) or layer.name,
            scale=tuple(layer.scale),
            translate=tuple(layer.translate),
            affine=np.array(layer.affine.affine_matrix),
            metadata=metadata,
        )


def result_layer_kwargs(result, source: SourceGeometry | None = None, extra_metadata: dict | None = None) -> dict:
    """Keyword arguments for ``napari.layers.Labels(result.labels, **kwargs)`` (or ``viewer.add_labels``)."""
    style = convention_layer_kwargs(result.label_convention)
    metadata = {
        **(source.metadata if source else {}),
        **style["metadata"],
        "model": result.model,
        "settings": result.settings,
        "volumes_ml": result.volumes_ml,
        "messages": list(result.messages),
        **(extra_metadata or {}),
    }
    kwargs = {
        "name": f"{source.name if source else 'image'} tumour ({result.model})",
        "metadata": metadata,
        "colormap": style["colormap"],
        "features": style["features"],
    }
    if source is not None:
        kwargs.update(scale=source.scale, translate=source.translate, affine=source.affine)
    return kwargs


def labels_layer_kwargs(result, like=None) -> dict:
    """``viewer.add_labels(result.labels, **labels_layer_kwargs(result, like=flair_layer))``: the layer the
    dock widget would add, with ``like``'s geometry and metadata (no geometry when ``like`` is None)."""
    return result_layer_kwargs(result, SourceGeometry.of(like) if like is not None else None)
