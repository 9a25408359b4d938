"""The napari dock widget: a thin GUI over :func:`napari_brainseg.engine.segment.segment`.

Pick the model and its input layers (auto-filled from layer names), press Run: the segmentation
runs in a napari ``thread_worker`` so the viewer stays responsive, a napari progress bar follows
the network steps, and the result arrives as a new labels layer ``<source> tumour (<model>)`` with
the source's geometry and metadata (so the plugin's writer saves it like the source), named classes
and fixed colours. Everything about the run is captured when Run is pressed, so changing the layer
selection meanwhile cannot redirect the result.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from os.path import commonprefix
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, Label, PushButton
from qtpy.QtCore import QObject, Signal

from .. import conventions as label_conventions
from ..engine.device import DEVICES
from ..engine.registry import BRATS_MODEL, LGG_MODEL, MODELS
from ..errors import BrainsegInputError, first_line
from ..io.brats import MODALITIES
from ..io.lgg import CHANNELS
from ..limits import check_size
from .layer_names import brats_modality, lgg_channel, looks_like_brats_2023
from .layer_style import SourceGeometry, result_layer_kwargs
from .measure_layers import add_result_extras

if TYPE_CHECKING:
    import napari

_MODALITY_TITLES = {"flair": "FLAIR", "t1": "T1", "t1ce": "T1ce", "t2": "T2"}
_TRUTH_KINDS = {"brats_seg", "lgg_mask", "nifti_seg"}
_TRUTH_WORDS = ("seg", "mask", "label", "truth", "gt")
_PLACEMENT_PAUSE_MS = 30  # between the steps of adding a result layer: long enough for a repaint


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


class _ProgressRelay(QObject):
    """Carries (done, total) from the worker thread to the main thread through a queued signal."""

    step = Signal(int, int)


class SegmentationWidget(Container):
    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.model = ComboBox(label="Model", choices=list(MODELS), value=BRATS_MODEL)
        self.brats_pickers = {
            m: ComboBox(label=_MODALITY_TITLES[m], choices=self._single_channel_choices, nullable=True)
            for m in MODALITIES
        }
        self.lgg_rgb = ComboBox(label="3-channel layer", choices=self._three_channel_choices, nullable=True)
        self.lgg_pickers = {
            c: ComboBox(label=c, choices=self._single_channel_choices, nullable=True) for c in CHANNELS
        }
        self.device = ComboBox(label="Device", choices=list(DEVICES), value="auto")
        self.tta = CheckBox(text="Flip test-time augmentation (slower)", value=False)
        self.uncertainty = CheckBox(text="Confidence and uncertainty map (flip members, slower)", value=False)
        self.run_button = PushButton(text="Run")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.status = Label(label="Result", value="")
        self.extend(
            [self.model, *self.brats_pickers.values(), self.lgg_rgb, *self.lgg_pickers.values(), self.device,
             self.tta, self.uncertainty, self.run_button, self.cancel_button, self.status]
        )
        self.worker = None
        self._placing = False  # the result layer is being added in steps (see _on_returned)
        self._stop = threading.Event()
        self._pbar = None
        self._closed = False  # the dock (or the whole viewer) was closed: stop the run, touch no Qt widget
        self.native.destroyed.connect(self._on_destroyed)
        self._model_chosen_by_user = False
        self._relay = _ProgressRelay()
        self._relay.step.connect(self._on_progress)

        self.model.changed.connect(self._on_model_changed)
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        for event in (napari_viewer.layers.events.inserted, napari_viewer.layers.events.removed):
            event.connect(self._on_layers_changed)
        self._on_layers_changed()
        self._show_pickers()
        _warm_up_in_background()

    # ------------------------------------------------------------------------------ layer pickers

    def _image_layers(self):
        from napari.layers import Image

        return [layer for layer in self.viewer.layers if isinstance(layer, Image) and not layer.multiscale]

    def _single_channel_choices(self, _widget=None):
        return [(layer.name, layer) for layer in self._image_layers() if not layer.rgb]

    def _three_channel_choices(self, _widget=None):
        return [(layer.name, layer) for layer in self._image_layers() if layer.data.shape[-1] == 3]

    def _on_layers_changed(self, _event=None):
        self.reset_choices()
        self._autofill()

    def _autofill(self):
        """Fill empty pickers from layer names; keep the user's own choices."""
        singles = [layer for _, layer in self._single_channel_choices()]
        flair = self.brats_pickers["flair"].value
        for modality, picker in self.brats_pickers.items():
            if picker.value is None:
                picker.value = _best_match(singles, lambda n, m=modality: brats_modality(n) == m, flair)
                flair = self.brats_pickers["flair"].value
        if self.lgg_rgb.value is None:
            rgb = [layer for _, layer in self._three_channel_choices()]
            self.lgg_rgb.value = rgb[0] if rgb else None
        anchor = self.lgg_pickers["FLAIR"].value
        for channel, picker in self.lgg_pickers.items():
            if picker.value is None:
                picker.value = _best_match(singles, lambda n, c=channel: lgg_channel(n) == c, anchor)
                anchor = self.lgg_pickers["FLAIR"].value
        if not self._model_chosen_by_user:
            self._guess_model()

    def _guess_model(self):
        brats_ready = all(p.value is not None for p in self.brats_pickers.values())
        lgg_ready = self.lgg_rgb.value is not None or all(p.value is not None for p in self.lgg_pickers.values())
        guess = BRATS_MODEL if brats_ready else LGG_MODEL if lgg_ready else None
        if guess and guess != self.model.value:
            with self.model.changed.blocked():
                self.model.value = guess
            self._show_pickers()

    def _on_model_changed(self, _value=None):
        self._model_chosen_by_user = True
        self._show_pickers()

    def _show_pickers(self):
        brats = self.model.value == BRATS_MODEL
        for picker in self.brats_pickers.values():
            picker.visible = brats
        for picker in (self.lgg_rgb, *self.lgg_pickers.values()):
            picker.visible = not brats

    # ------------------------------------------------------------------------------ running

    @property
    def is_running(self) -> bool:
        """True from Run until the result is fully in the viewer (or the run failed or was cancelled)."""
        return self.worker is not None or self._placing

    def run(self, _value=None):
        """Capture the inputs, check them, and start the worker; errors become one notification."""
        from napari.utils.notifications import show_error

        if self.is_running:
            return
        try:
            job = self._collect_job()
        except BrainsegInputError as exc:
            show_error(str(exc))
            return
        self._start(job)

    def cancel(self, _value=None):
        if self.is_running:
            self._stop.set()
            self.cancel_button.enabled = False
            self.status.value = "Cancelling..."

    def _collect_job(self) -> Job:
        model = self.model.value
        if model == BRATS_MODEL:
            layers = self._brats_layers()
        else:
            layers = self._lgg_layers()
        source = layers[0] if model == BRATS_MODEL or len(layers) == 1 else layers[1]  # FLAIR names the result
        grid = source.data.shape[:-1] if source.rgb or len(layers) == 1 and model == LGG_MODEL else source.data.shape
        check_size(grid, f"layer '{source.name}'")  # before the worker turns layer data into arrays
        info = dict(source.metadata.get("brainseg", {}))
        convention = None
        if model == BRATS_MODEL:
            convention = "brats2023" if any(looks_like_brats_2023(layer.name) for layer in layers) else "brats2018"
        truth = self._find_truth(tuple(grid), info)
        if truth is not None and model == BRATS_MODEL and truth.metadata.get("label_convention") in label_conventions.GLIOMA_CONVENTIONS:
            convention = truth.metadata["label_convention"]  # write results in the case's own values
        spacing_known = "nifti_affine" in source.metadata or any(s != 1 for s in source.scale)
        return Job(
            model=model,
            arrays=[layer.data for layer in layers],
            source=SourceGeometry.of(source),
            device=self.device.value,
            tta=bool(self.tta.value),
            settings={"uncertainty": bool(self.uncertainty.value)},  # flip members kept apart (engine.uncertainty)
            convention=convention,
            spacing_known=spacing_known,
            truth=None if truth is None else truth.data,
            truth_name=None if truth is None else truth.name,
            truth_convention=None if truth is None else truth.metadata.get("label_convention"),
        )

    def _brats_layers(self):
        chosen = {m: p.value for m, p in self.brats_pickers.items()}
        missing = [_MODALITY_TITLES[m] for m, layer in chosen.items() if layer is None]
        if missing:
            raise BrainsegInputError(
                f"brats-unet3d needs a FLAIR, T1, T1ce and T2 image layer; choose the {', '.join(missing)} layer(s)."
            )
        layers = [chosen[m] for m in MODALITIES]
        for layer in layers:
            if layer.data.ndim == 2:
                raise BrainsegInputError(f"brats-unet3d needs 3D volumes, but layer '{layer.name}' is a 2D image.")
            if layer.data.ndim != 3:
                raise BrainsegInputError(
                    f"brats-unet3d needs single-channel 3D volumes; layer '{layer.name}' has shape {layer.data.shape}."
                )
        _check_same_shape(layers)
        return layers

    def _lgg_layers(self):
        rgb = self.lgg_rgb.value
        if rgb is not None:
            if rgb.data.ndim not in (3, 4) or rgb.data.shape[-1] != 3:
                raise BrainsegInputError(
                    f"lgg-unet2d needs 3 channels (pre-contrast, FLAIR, post-contrast); layer '{rgb.name}' has "
                    f"shape {rgb.data.shape}."
                )
            return [rgb]
        chosen = [self.lgg_pickers[c].value for c in CHANNELS]
        if any(layer is None for layer in chosen):
            raise BrainsegInputError(
                "lgg-unet2d needs one 3-channel layer or three single-channel layers (pre-contrast, FLAIR, post-contrast)."
            )
        for layer in chosen:
            if layer.data.ndim not in (2, 3):
                raise BrainsegInputError(
                    f"lgg-unet2d needs 2D slices or a 3D stack; layer '{layer.name}' has shape {layer.data.shape}."
                )
        _check_same_shape(chosen)
        return chosen

    def _find_truth(self, grid: tuple, info: dict):
        """A ground-truth labels layer of the same case and grid (not one of our predictions), or None."""
        from napari.layers import Labels

        case = info.get("case_id") or info.get("patient_id")
        for layer in reversed(list(self.viewer.layers)):
            if not isinstance(layer, Labels) or tuple(layer.data.shape) != grid:
                continue
            meta = layer.metadata.get("brainseg", {})
            if meta.get("kind") == "prediction":
                continue
            other = meta.get("case_id") or meta.get("patient_id")
            if case and other and other != case:
                continue
            if meta.get("kind") in _TRUTH_KINDS or any(w in layer.name.lower() for w in _TRUTH_WORDS):
                return layer
        return None

    def _start(self, job: Job):
        from napari.qt.threading import thread_worker
        from napari.utils import progress

        self._stop.clear()
        self.run_button.enabled = False
        self.cancel_button.enabled = True
        self.status.value = f"Segmenting {job.source.name} with {job.model}..."
        self._pbar = progress(total=0, desc=f"{job.source.name}: {job.model}")
        relay = self._relay

        def emit(done, total):
            relay.step.emit(int(done), int(total))

        worker = thread_worker(
            _compute,
            connect={"returned": lambda out: self._on_returned(job, out), "errored": self._on_errored,
                     "finished": self._on_finished},
            start_thread=False,
        )(job, emit, self._stop.is_set)
        self.worker = worker
        worker.start()

    # ------------------------------------------------------------------------------ worker callbacks

    def _on_progress(self, done: int, total: int):
        if self._pbar is not None:
            self._pbar.total = total
            self._pbar.n = done
            self._pbar.refresh()

    def _on_destroyed(self, *_args):
        """The widget is gone (dock or viewer closed): stop the worker at its next step, add nothing."""
        self._closed = True
        self._stop.set()

    def _on_returned(self, job: Job, out):
        if self._closed:
            return  # the viewer was closed mid-run: nothing to add the result to
        result, dice, layer = out
        # The layer was built in the worker; what is left is napari's own main-thread work of adding
        # it (visuals, overlays, controls panel: ~80 ms on a slow 2-core machine, as for any
        # add_labels). The first paint and the summary wait for later event-loop turns, so they do
        # not lengthen that stall (median longest gap 120 -> 111 ms: benchmarks/results/widget*.json).
        layer.name = _unique_name(layer.name, {existing.name for existing in self.viewer.layers})
        layer.visible = False
        self._placing = True
        self.cancel_button.enabled = False  # the result is complete; nothing is left to cancel
        self.viewer.layers.append(layer)  # napari makes it the active layer

        def show():  # the layer belongs to the viewer: shown even if the dock was closed meanwhile
            if layer in self.viewer.layers:
                layer.visible = True

        def extras():  # a later turn of the event loop, so its stall does not add to the layer's
            if layer in self.viewer.layers:
                add_result_extras(self.viewer, result, layer)  # diameters; the hidden uncertainty layer

        def finish():
            self._placing = False
            if not self._closed:
                if self.worker is None:
                    self._end_run()
                self.status.value = _summary(layer.name, result, dice, job)

        from qtpy.QtCore import QTimer

        QTimer.singleShot(_PLACEMENT_PAUSE_MS, show)
        QTimer.singleShot(2 * _PLACEMENT_PAUSE_MS, extras)
        QTimer.singleShot(3 * _PLACEMENT_PAUSE_MS, finish)

    def _on_errored(self, exc: Exception):
        from napari.utils.notifications import show_error, show_info

        if self._closed:
            return
        if isinstance(exc, InterruptedError):
            show_info("Segmentation cancelled; no layer was added.")
            self.status.value = "Cancelled."
            return
        message = first_line(exc, limit=None)
        if not isinstance(exc, BrainsegInputError):
            message = f"Segmentation failed: {type(exc).__name__}: {message}"
        show_error(message)
        self.status.value = "Failed: " + message

    def _on_finished(self):
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None
        self.worker = None
        if self._closed or self._placing:
            return  # finish() in _on_returned ends the run
        self._end_run()

    def _end_run(self):
        self.run_button.enabled = True
        self.cancel_button.enabled = False


# ---------------------------------------------------------------------------------- helpers


def _warm_up_in_background():
    """Import torch and MONAI off the main thread while the user picks layers.

    Imported on the main thread at the first Run they would freeze napari for about 3 s; in a
    thread the longest pause is the ~0.2 s torch spends loading its C library under the GIL.
    """
    import sys

    if "napari_brainseg.engine.segment" not in sys.modules:
        threading.Thread(target=_import_inference, name="brainseg-warm-up", daemon=True).start()


def _import_inference():
    try:
        from ..engine import segment  # noqa: F401
    except Exception:  # noqa: BLE001 - a broken install is reported by the first Run, as one notification
        pass


def _compute(job: Job, progress, should_stop):
    """Worker-thread body: segment, then (when a ground truth was open) score against it."""
    from ..engine.segment import segment

    arrays = [np.asarray(a) for a in job.arrays]
    image = arrays[0] if len(arrays) == 1 else arrays
    # a file's affine gives its orientation and voxel size, brought to the model's by segment()
    affine = job.source.metadata.get("nifti_affine") if job.model == BRATS_MODEL else None
    spacing = job.source.scale if job.spacing_known and affine is None else None
    result = segment(
        image, job.model, device=job.device, tta=job.tta, convention=job.convention, spacing=spacing,
        affine=affine,
        progress=progress, should_stop=should_stop, uncertainty=job.settings.get("uncertainty", False),
    )
    dice = None
    if job.truth is not None:
        dice = dice_against(result.labels, result.label_convention, np.asarray(job.truth), job.truth_convention)
    return result, dice, build_labels_layer(job, result, dice)


def build_labels_layer(job: Job, result, dice: dict | None):
    """The result as a napari Labels layer with the source's geometry, class names and colours."""
    from napari.layers import Labels

    extra = None if dice is None else {"dice": {"against": job.truth_name, **dice}}
    return Labels(result.labels, **result_layer_kwargs(result, job.source, extra))


def dice_against(pred: np.ndarray, pred_convention: str, truth: np.ndarray, truth_convention: str | None) -> dict:
    """Dice per class: BraTS regions WT, TC, ET; LGG the tumour."""
    from ..engine.metrics import dice_per_channel

    if pred_convention == "lgg":
        return {"tumour": dice_per_channel((pred > 0)[None], (truth > 0)[None])[0]}
    if truth_convention not in label_conventions.GLIOMA_CONVENTIONS:
        truth_convention = label_conventions.guess_brats_convention(truth) or pred_convention
    p = label_conventions.brats_labels_to_regions(pred, pred_convention)
    t = label_conventions.brats_labels_to_regions(truth, truth_convention)
    scores = dice_per_channel(p, t)
    by_region = dict(zip(label_conventions.BRATS_REGIONS, scores))
    return {r: by_region[r] for r in ("WT", "TC", "ET")}


def _summary(name: str, result, dice: dict | None, job: Job) -> str:
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


def _best_match(layers, accept, anchor):
    """The accepted layer sharing the longest name prefix with ``anchor`` (same case), else the first."""
    candidates = [layer for layer in layers if accept(layer.name)]
    if not candidates:
        return None
    if anchor is None:
        return candidates[0]
    return max(candidates, key=lambda layer: len(commonprefix([layer.name, anchor.name])))


def _check_same_shape(layers):
    shapes = {tuple(layer.data.shape) for layer in layers}
    if len(shapes) > 1:
        listing = ", ".join(f"'{layer.name}' {tuple(layer.data.shape)}" for layer in layers)
        raise BrainsegInputError(f"The input layers have different shapes ({listing}); they must share one grid.")


def _unique_name(name: str, existing: set[str]) -> str:
    if name not in existing:
        return name
    n = 2
    while f"{name} [{n}]" in existing:
        n += 1
    return f"{name} [{n}]"
