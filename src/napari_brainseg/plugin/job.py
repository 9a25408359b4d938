"""What the dock widget runs, without Qt: the job captured from the chosen layers when Run is pressed
(checked by :mod:`.case_match`), the ground truth of the same case, the worker-thread body, and the notes
shown after. Tested headless; the widget (``widget.py``) is only UI and the worker's lifecycle.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..conventions import GLIOMA_CONVENTIONS, Convention
from ..engine.registry import BRATS_MODEL, LGG_MODEL
from ..limits import check_size
from .case_match import brats_channels, check_inputs, is_prediction, layer_case
from .layer_names import looks_like_brats_2023
from .layer_style import SourceGeometry, result_layer_kwargs
from .results_record import dice_summary, results_record
from .series_inputs import CapturedGrids, capture, onto_reference, series_lines

_TRUTH_KINDS = {"brats_seg", "lgg_mask", "nifti_seg"}
_TRUTH_WORDS = ("seg", "mask", "label", "truth", "gt")


@dataclass
class Job:
    """Everything a run needs, captured on the main thread when Run is pressed."""

    model: str
    case: str
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
    grids: CapturedGrids | None = None  # the 3D model's layers' positions: other grids go onto FLAIR's
    series_notes: list = field(default_factory=list)  # which DICOM series became which modality
    fast: bool = False  # one network of a fold ensemble (engine.segment)


def find_truth(labels_layers, grid: tuple, case: str):
    """The newest ground-truth labels layer of ``case`` on ``grid`` (never a prediction), or None."""
    for layer in reversed(list(labels_layers)):
        if tuple(layer.data.shape) != grid or is_prediction(layer):
            continue
        other = layer_case(layer)
        if case and other and other != case:
            continue
        kind = layer.metadata.get("brainseg", {}).get("kind")
        if kind in _TRUTH_KINDS or any(w in layer.name.lower() for w in _TRUTH_WORDS):
            return layer
    return None


def collect_job(model: str, brats: dict, lgg: dict, labels_layers, *, device: str, tta: bool,
                settings: dict | None = None, fast: bool = False) -> Job:
    """Check the picked layers (``brats``/``lgg``: picker -> layer) and capture everything the worker needs
    (raises BrainsegInputError). ``settings``: {"uncertainty": bool} keeps the flip members apart,
    {"keep_small_lesions": bool} skips the model's small-component cleanup."""
    layers = check_inputs(model, brats, lgg)
    source = layers[0] if model == BRATS_MODEL or len(layers) == 1 else layers[1]  # FLAIR names the result
    three_channel = model == LGG_MODEL and len(layers) == 1
    grid = tuple(source.data.shape[:-1] if three_channel else source.data.shape)
    check_size(grid, f"layer '{source.name}'")  # before the worker turns layer data into arrays
    case = layer_case(source)
    convention = None
    if model == BRATS_MODEL:
        convention = Convention.BRATS2023 if any(looks_like_brats_2023(layer.name) for layer in layers) else Convention.BRATS2018
    truth = find_truth(labels_layers, grid, case)
    if truth is not None and model == BRATS_MODEL and truth.metadata.get("label_convention") in GLIOMA_CONVENTIONS:
        convention = truth.metadata["label_convention"]  # write results in the case's own values
    return Job(
        model=model,
        case=case,
        arrays=[layer.data for layer in layers],
        source=SourceGeometry.of(source),
        device=device,
        tta=tta,
        fast=fast,
        settings=dict(settings or {}),
        convention=convention,
        spacing_known="nifti_affine" in source.metadata or any(s != 1 for s in source.scale),
        truth=None if truth is None else truth.data,
        truth_name=None if truth is None else truth.name,
        truth_convention=None if truth is None else truth.metadata.get("label_convention"),
        grids=capture(brats_channels(), layers) if model == BRATS_MODEL else None,
        series_notes=series_lines(dict(zip(brats_channels(), layers))) if model == BRATS_MODEL else [],
    )


def compute(job: Job, progress, should_stop):
    """Worker-thread body: segment, tabulate volumes (and Dice against the ground truth when one was open),
    build the layer with its results in ``metadata["results"]``. Returns (result, layer)."""
    from napari.layers import Labels

    from ..engine import segment as engine_segment
    from ..engine.volumes import volume_rows
    from .comparison import style_prediction

    started = time.perf_counter()
    arrays = [np.asarray(a) for a in job.arrays]
    first_notes = list(job.series_notes)
    if job.grids is not None:  # worker-thread work: resampling a series takes seconds
        arrays, moved, _ = onto_reference(job.grids, arrays)
        first_notes += moved
    image = arrays[0] if len(arrays) == 1 else arrays
    # a file's affine gives its orientation and voxel size, brought to the model's by segment()
    affine = job.source.metadata.get("nifti_affine") if job.model == BRATS_MODEL else None
    spacing = job.source.scale if job.spacing_known and affine is None else None
    result = engine_segment.segment(
        image, job.model, device=job.device, tta=job.tta, fast=job.fast, convention=job.convention, spacing=spacing,
        affine=affine, progress=progress, should_stop=should_stop, uncertainty=job.settings.get("uncertainty", False),
        keep_small_lesions=job.settings.get("keep_small_lesions", False),
    )
    result.messages[:0] = first_notes
    voxel_ml, _ = engine_segment.voxel_volume_ml(result.settings.get("spacing_mm"), result.labels.ndim)
    truth = None if job.truth is None else np.asarray(job.truth)
    rows = volume_rows(result.labels, result.label_convention, voxel_ml, truth, job.truth_convention)
    record = results_record(job, result, rows, time.perf_counter() - started)
    extra = {"results": record}
    if record.get("truth"):
        extra["dice"] = {"against": record["truth"], **dice_summary(rows, result.label_convention)}
    layer = Labels(result.labels, **result_layer_kwargs(result, job.source, extra))
    style_prediction(layer, has_truth=job.truth is not None)
    return result, layer


def notes(result, job: Job) -> list[str]:
    """What the dock says under the result besides the table: the confidence, the "check this core" flag
    (engine.check_flag) and the engine's messages."""
    found = result.messages if job.spacing_known else [m for m in result.messages if "spacing" not in m]
    if result.check is not None:
        found = [result.check.line(), *found]
    if result.confidence is not None:
        found = [f"Confidence: {result.confidence:.3f} (agreement of the networks and flips; the uncertainty map is a hidden layer)",
                 *found]
    return found
