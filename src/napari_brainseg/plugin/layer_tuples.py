"""Layer data tuples for napari: image and labels layers with names, contrast, geometry and tumour classes.

The readers (``readers``), the sample data (``sample_data``) and DICOM exams (``dicom_layers``) build
their layers here, so every layer of a case looks the same whichever way it was opened.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..conventions import Convention
from ..io.brats import MODALITIES
from ..io.lgg import CHANNELS
from ..io.nifti import Volume
from .layer_style import convention_layer_kwargs
from .placement import layer_placement

LayerTuple = tuple  # (data, kwargs, layer_type)


def robust_contrast_limits(data: np.ndarray, low: float = 0.5, high: float = 99.5) -> tuple[float, float]:
    """Percentiles of the non-zero voxels (MRI background is 0), subsampled for speed."""
    flat = np.asarray(data).ravel()
    step = max(1, flat.size // 2_000_000)
    sample = flat[::step]
    sample = sample[np.isfinite(sample) & (sample != 0)] if sample.dtype.kind == "f" else sample[sample != 0]
    if sample.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(sample, [low, high]))
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


def nifti_metadata(volume: Volume | None, *, affine=None, header=None) -> dict:
    affine = volume.affine if volume is not None else affine
    header = volume.header if volume is not None else header
    meta = {}
    if affine is not None:
        meta["nifti_affine"] = np.asarray(affine, dtype=float).copy()
    if header is not None:
        meta["nifti_header"] = bytes(header.binaryblock)
    if volume is not None and volume.path is not None:
        meta["source_path"] = str(volume.path)
    return meta


def image_layer(data, name: str, scale, metadata: dict, *, visible: bool = True) -> LayerTuple:
    """An image layer; one read from a file (``metadata["nifti_affine"]``) lies in patient coordinates."""
    kwargs = {
        "name": name,
        "scale": tuple(scale),
        "contrast_limits": robust_contrast_limits(data),
        "colormap": "gray",
        "metadata": metadata,
        "visible": visible,
    }
    return data, placed(kwargs, data), "image"


def labels_layer(data, name: str, scale, metadata: dict, convention: str | None) -> LayerTuple:
    """A labels layer; with a known convention its classes get names (``features``) and fixed colours."""
    kwargs = placed({"name": name, "scale": tuple(scale), "metadata": {**metadata, "label_convention": convention}}, data)
    if convention is not None:
        style = convention_layer_kwargs(convention)
        kwargs["metadata"].update(style.pop("metadata"))
        kwargs.update(style)
    return data, kwargs, "labels"


def placed(kwargs: dict, data) -> dict:
    """A 3D volume with a NIfTI affine is placed where the scanner put it (``placement``)."""
    affine = kwargs["metadata"].get("nifti_affine")
    if affine is not None and np.ndim(data) == 3 and len(kwargs["scale"]) == 3:
        kwargs.update(layer_placement(affine))
    return kwargs


def brats_layers(
    case_id: str,
    images: dict[str, np.ndarray],
    seg: np.ndarray | None,
    *,
    label_convention: str,
    spacing,
    affine=None,
    header=None,
    source: Path | None,
    file_suffixes: dict[str, str] | None = None,
) -> list[LayerTuple]:
    """One image layer per modality (FLAIR visible, the rest hidden under it) and the labels."""
    base = {**nifti_metadata(None, affine=affine, header=header)}
    if source is not None:
        base["source_path"] = str(source)
    layers = []
    for modality in MODALITIES:
        if modality not in images:
            continue
        suffix = (file_suffixes or {}).get(modality, modality)
        name = f"{case_id} {modality}" if suffix == modality else f"{case_id} {modality} ({suffix})"
        meta = {**base, "brainseg": {"kind": "brats_image", "case": case_id, "case_id": case_id, "modality": modality}}
        layers.append(image_layer(images[modality], name, spacing, meta, visible=modality == "flair"))
    if seg is not None:
        meta = {**base, "brainseg": {"kind": "brats_seg", "case": case_id, "case_id": case_id}}
        layers.append(labels_layer(seg, f"{case_id} seg", spacing, meta, label_convention))
    return layers


def lgg_layers(
    patient_id: str,
    image: np.ndarray,
    mask: np.ndarray | None,
    slice_numbers: list[int],
    source: Path | None,
    *,
    title: str | None = None,
) -> list[LayerTuple]:
    """(Z, H, W, 3) or (H, W, 3) slices -> three named grey image layers (sequences, not colours) + mask."""
    title = title or patient_id
    scale = (1.0,) * (image.ndim - 1)  # kaggle_3m gives no pixel spacing
    info = {"case": title, "patient_id": patient_id, "slice_numbers": list(slice_numbers)}  # a slice: <patient>_<n>
    if source is not None:
        info["source"] = str(source)
    layers = []
    for index, channel in enumerate(CHANNELS):
        meta = {"brainseg": {**info, "kind": "lgg_image", "channel": channel}}
        data = np.ascontiguousarray(image[..., index])
        layers.append(image_layer(data, f"{title} {channel}", scale, meta, visible=channel == "FLAIR"))
    if mask is not None:
        meta = {"brainseg": {**info, "kind": "lgg_mask"}}
        layers.append(labels_layer(mask, f"{title} mask", scale, meta, Convention.LGG))
    return layers
