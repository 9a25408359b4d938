"""What the dock widget runs, without Qt: the inputs captured from the chosen layers and checked when Run
is pressed (with the engine's torch-free checks), the worker-thread body, and the summary shown after.
Tested headless; the widget (``widget.py``) is only UI and the worker's lifecycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..conventions import GLIOMA_CONVENTIONS, Convention
from ..engine.inputs import check_channel_dims, check_same_shapes
from ..engine.registry import BRATS_MODEL, LGG_MODEL, get_spec
from ..errors import BrainsegInputError
from ..limits import check_size
from .layer_names import looks_like_brats_2023
from .layer_style import SourceGeometry, case_name_of, result_layer_kwargs

MODALITY_TITLES = {"flair": "FLAIR", "t1": "T1", "t1ce": "T1ce", "t2": "T2"}
_TRUTH_KINDS = {"brats_seg", "lgg_mask", "nifti_seg"}
_TRUTH_WORDS = ("seg", "mask", "label", "truth", "gt")


@dataclass
class Job:
    """Everything a run needs, captured on the main thread when Run is pressed."""

    model: str
    arrays: list  # layer data references, in the model's channel order (or one 3-channel array)
    source: SourceGeometry
    device: str
    tta: bool
    convention: str | None
    spacing_known: bool
    truth: np.ndarray | None = None
    truth_name: str | None = None
    truth_convention: str | None = None
    settings: dict = field(default_factory=dict)


def _named(layers) -> list[tuple[str, tuple]]:
    return [(f"layer '{layer.name}'", tuple(layer.data.shape)) for layer in layers]


def brats_input_layers(chosen: dict) -> list:
    """The FLAIR, T1, T1ce, T2 layers (``chosen``: modality -> layer or None), checked for the 3D model."""
    missing = [MODALITY_TITLES[m] for m, layer in chosen.items() if layer is None]
    if missing:
        raise BrainsegInputError(
            f"{BRATS_MODEL} needs a FLAIR, T1, T1ce and T2 image layer; choose the {', '.join(missing)} layer(s)."
        )
    layers = [chosen[m] for m in get_spec(BRATS_MODEL).in_channels]
    check_channel_dims(BRATS_MODEL, _named(layers))
    check_same_shapes(_named(layers), "layers")
    return layers


def lgg_input_layers(rgb, chosen: dict) -> list:
    """One 3-channel layer, else three single-channel layers (``chosen``: channel -> layer or None)."""
    channels = get_spec(LGG_MODEL).in_channels
    if rgb is not None:
        if rgb.data.ndim not in (3, 4) or rgb.data.shape[-1] != len(channels):
            raise BrainsegInputError(
                f"{LGG_MODEL} needs 3 channels ({', '.join(channels)}); layer '{rgb.name}' has shape {rgb.data.shape}."
            )
        return [rgb]
    layers = [chosen[c] for c in channels]
    if any(layer is None for layer in layers):
        raise BrainsegInputError(
            f"{LGG_MODEL} needs one 3-channel layer or three single-channel layers ({', '.join(channels)})."
        )
    check_channel_dims(LGG_MODEL, _named(layers))
    check_same_shapes(_named(layers), "layers")
    return layers


def collect_job(model: str, layers: list, viewer_layers, device: str, tta: bool, settings: dict | None = None) -> Job:
    """The run for checked input ``layers``; ``viewer_layers`` are searched for a ground truth to score against;
    ``settings``: {"uncertainty": bool} keeps the flip members apart (engine.uncertainty)."""
    source = layers[0] if model == BRATS_MODEL or len(layers) == 1 else layers[1]  # FLAIR names the result
    grid = source.data.shape[:-1] if source.rgb or len(layers) == 1 and model == LGG_MODEL else source.data.shape
    check_size(grid, f"layer '{source.name}'")  # before the worker turns layer data into arrays
    convention = None
    if model == BRATS_MODEL:
        convention = Convention.BRATS2023 if any(looks_like_brats_2023(layer.name) for layer in layers) else Convention.BRATS2018
    truth = find_truth(viewer_layers, tuple(grid), case_name_of(source.metadata.get("brainseg", {})))
    if truth is not None and model == BRATS_MODEL and truth.metadata.get("label_convention") in GLIOMA_CONVENTIONS:
        convention = truth.metadata["label_convention"]  # write results in the case's own values
    return Job(
        model=model,
        arrays=[layer.data for layer in layers],
        source=SourceGeometry.of(source),
        device=device,
        tta=tta,
        settings=dict(settings or {}),
        convention=convention,
        spacing_known="nifti_affine" in source.metadata or any(s != 1 for s in source.scale),
        truth=None if truth is None else truth.data,
        truth_name=None if truth is None else truth.name,
        truth_convention=None if truth is None else truth.metadata.get("label_convention"),
    )


def find_truth(viewer_layers, grid: tuple, case: str | None):
    """A ground-truth labels layer of the same case and grid (not one of our predictions), or None."""
    from napari.layers import Labels

    for layer in reversed(list(viewer_layers)):
        if not isinstance(layer, Labels) or tuple(layer.data.shape) != grid:
            continue
        meta = layer.metadata.get("brainseg", {})
        if meta.get("kind") == "prediction":
            continue
        other = case_name_of(meta)
        if case and other and other != case:
            continue
        if meta.get("kind") in _TRUTH_KINDS or any(w in layer.name.lower() for w in _TRUTH_WORDS):
            return layer
    return None


def compute(job: Job, progress, should_stop):
    """Worker-thread body: segment, score against the ground truth when one was open, build the layer."""
    from napari.layers import Labels

    from ..engine.metrics import region_dice
    from ..engine.segment import segment

    arrays = [np.asarray(a) for a in job.arrays]
    image = arrays[0] if len(arrays) == 1 else arrays
    # a file's affine gives its orientation and voxel size, brought to the model's by segment()
    affine = job.source.metadata.get("nifti_affine") if job.model == BRATS_MODEL else None
    spacing = job.source.scale if job.spacing_known and affine is None else None
    result = segment(
        image, job.model, device=job.device, tta=job.tta, convention=job.convention, spacing=spacing,
        affine=affine, progress=progress, should_stop=should_stop, uncertainty=job.settings.get("uncertainty", False),
    )
    dice = None
    if job.truth is not None:
        scores = region_dice(result.labels, result.label_convention, np.asarray(job.truth), job.truth_convention)
        dice = {r: scores[r] for r in ("WT", "TC", "ET", "tumour") if r in scores}  # shown whole tumour first
    extra = None if dice is None else {"dice": {"against": job.truth_name, **dice}}
    return result, dice, Labels(result.labels, **result_layer_kwargs(result, job.source, extra))


def summary(name: str, result, dice: dict | None, job: Job) -> str:
    lines = [f"{name} ({result.device})"]
    unit = "mL" if job.spacing_known else "mL, assuming 1 mm voxels"
    lines.append(f"Volumes ({unit}):")
    lines += [f"  {cls}: {ml:.1f}" for cls, ml in result.volumes_ml.items()]
    if dice is not None:
        lines.append(f"Dice vs '{job.truth_name}': " + ", ".join(f"{k} {v:.3f}" for k, v in dice.items()))
    if result.confidence is not None:
        lines.append(f"Confidence: {result.confidence:.3f} (flip-member agreement; map: '{name} uncertainty', hidden)")
    lines += result.messages if job.spacing_known else [m for m in result.messages if "spacing" not in m]
    return "\n".join(lines)
