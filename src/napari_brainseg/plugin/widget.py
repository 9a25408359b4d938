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
from os.path import commonprefix
from typing import TYPE_CHECKING

from magicgui.widgets import CheckBox, ComboBox, Container, Label, PushButton
from qtpy.QtCore import QObject, Signal

from ..engine.device import DEVICES
from ..engine.registry import BRATS_MODEL, LGG_MODEL, MODELS, get_spec
from ..errors import BrainsegInputError, first_line
from .job import MODALITY_TITLES, Job, brats_input_layers, collect_job, compute, lgg_input_layers, summary
from .layer_names import brats_modality, lgg_channel
from .measure_layers import add_result_extras

if TYPE_CHECKING:
    import napari

_PLACEMENT_PAUSE_MS = 30  # between the steps of adding a result layer: long enough for a repaint


class _ProgressRelay(QObject):
    """Carries (done, total) from the worker thread to the main thread through a queued signal."""

    step = Signal(int, int)


class SegmentationWidget(Container):
    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.model = ComboBox(label="Model", choices=list(MODELS), value=BRATS_MODEL)
        self.brats_pickers = {
            m: ComboBox(label=MODALITY_TITLES[m], choices=self._single_channel_choices, nullable=True)
            for m in get_spec(BRATS_MODEL).in_channels
        }
        self.lgg_rgb = ComboBox(label="3-channel layer", choices=self._three_channel_choices, nullable=True)
        self.lgg_pickers = {
            c: ComboBox(label=c, choices=self._single_channel_choices, nullable=True) for c in get_spec(LGG_MODEL).in_channels
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
            layers = brats_input_layers({m: p.value for m, p in self.brats_pickers.items()})
        else:
            layers = lgg_input_layers(self.lgg_rgb.value, {c: p.value for c, p in self.lgg_pickers.items()})
        return collect_job(model, layers, self.viewer.layers, self.device.value, bool(self.tta.value),
                           {"uncertainty": bool(self.uncertainty.value)})

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
            compute,
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
                add_result_extras(self.viewer, result, layer)  # the hidden uncertainty layer

        def finish():
            self._placing = False
            if not self._closed:
                if self.worker is None:
                    self._end_run()
                self.status.value = summary(layer.name, result, dice, job)

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


def _best_match(layers, accept, anchor):
    """The accepted layer sharing the longest name prefix with ``anchor`` (same case), else the first."""
    candidates = [layer for layer in layers if accept(layer.name)]
    if not candidates:
        return None
    if anchor is None:
        return candidates[0]
    return max(candidates, key=lambda layer: len(commonprefix([layer.name, anchor.name])))


def _unique_name(name: str, existing: set[str]) -> str:
    if name not in existing:
        return name
    n = 2
    while f"{name} [{n}]" in existing:
        n += 1
    return f"{name} [{n}]"
