"""The napari dock widget: a thin GUI over :func:`napari_brainseg.engine.segment.segment`.

UI and worker lifecycle only. Which layers go in (the case, picker filling, the checks) is decided in
:mod:`.job`, the results table in :mod:`.results_panel`, the prediction's look in :mod:`.comparison`.
The widget follows the newest or selected case; Run says which case it is about to segment. The
segmentation runs in a napari ``thread_worker`` so the viewer stays responsive, the dock's progress
bar follows the network steps, and the result arrives as a new labels layer ``<case> tumour
(<model>)`` with the source's geometry and metadata, named classes and fixed colours, and its
results table in ``metadata["results"]``. Everything about the run is captured when Run is pressed.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from magicgui.widgets import CheckBox, ComboBox, Container, Label, ProgressBar, PushButton
from qtpy.QtCore import QObject, Signal

from ..engine.device import DEVICES
from ..engine.registry import BRATS_MODEL, MODELS, get_spec
from ..errors import BrainsegInputError, first_line
from . import notices
from .case_match import MODALITY_TITLES, brats_channels, lgg_channels
from .case_pickers import CasePickers
from .comparison import compare_with_truth
from .job import Job, collect_job, compute, notes
from .measure_layers import add_result_extras
from .results_panel import ResultsPanel, wrap_and_select
from .views import ViewFitter

if TYPE_CHECKING:
    import napari

_PLACEMENT_PAUSE_MS = 30  # between the steps of adding a result layer: long enough for a repaint
_TIPS = {
    "case": "The case to segment: follows the case opened last or the layer selected in the layer list",
    "model": "brats-unet3d: 3D, FLAIR + T1 + T1ce + T2 (BraTS). lgg-unet2d: 2D slices, pre-contrast + FLAIR + "
    "post-contrast (kaggle_3m)",
    "device": "auto: a CUDA GPU when present, else the CPU",
    "tta": "Average the prediction over mirrored copies of the input: a little more accurate, 3-4x slower "
    "(on by default where the model's cross-validation chose it)",
    "fast": "One network of the model's fold ensemble and no test-time augmentation: several times faster, "
    "a little less accurate",
    "small": "Keep every separate lesion the model finds. By default lesions smaller than a fraction of the "
    "largest are dropped (chosen by cross-validation on mostly single-lesion cases); multifocal disease needs this",
    "run": "Segment the chosen layers; the result is added as a new labels layer",
    "cancel": "Stop the running segmentation; nothing is added",
    "compare": "Show the ground truth filled and the prediction as outlines on top of it",
}


class _ProgressRelay(QObject):
    """Carries (done, total) from the worker thread to the main thread through a queued signal."""

    step = Signal(int, int)


class SegmentationWidget(CasePickers, Container):
    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.case = ComboBox(label="Case", choices=self._case_choices, tooltip=_TIPS["case"])
        self.model = ComboBox(label="Model", choices=list(MODELS), value=BRATS_MODEL, tooltip=_TIPS["model"])
        self.brats_pickers = {
            m: ComboBox(label=MODALITY_TITLES[m], choices=self._single_channel_choices, nullable=True,
                        tooltip=f"The {MODALITY_TITLES[m]} image layer")
            for m in brats_channels()
        }
        self.lgg_rgb = ComboBox(label="3-channel layer", choices=self._three_channel_choices, nullable=True,
                                tooltip="One kaggle_3m-style slice or stack with 3 channels")
        self.lgg_pickers = {
            c: ComboBox(label=c, choices=self._single_channel_choices, nullable=True,
                        tooltip=f"The {c} image layer (instead of a 3-channel layer)")
            for c in lgg_channels()
        }
        self.device = ComboBox(label="Device", choices=list(DEVICES), value="auto", tooltip=_TIPS["device"])
        self.fast = CheckBox(text="Fast (one network, no TTA)", value=False, tooltip=_TIPS["fast"])
        self.tta = CheckBox(text="Flip test-time augmentation (slower)", value=get_spec(BRATS_MODEL).tta,
                            tooltip=_TIPS["tta"])
        self.uncertainty = CheckBox(text="Confidence and uncertainty map (every network under every flip, slower)", value=False)
        self.keep_small = CheckBox(text="Keep small lesions", value=False, tooltip=_TIPS["small"])
        self.run_button = PushButton(text="Run", tooltip=_TIPS["run"])
        self.cancel_button = PushButton(text="Cancel", enabled=False, tooltip=_TIPS["cancel"])
        self.progress = ProgressBar(label="Progress", min=0, max=1, value=0)
        self.status = Label(label="Status", value="")
        self.results = ResultsPanel()
        self.compare_button = PushButton(text="Compare with truth", enabled=False, tooltip=_TIPS["compare"])
        self.results.actions.append(self.compare_button)  # more result actions join this row
        buttons = Container(layout="horizontal", labels=False, widgets=[self.run_button, self.cancel_button])
        self.extend(
            [self.case, self.model, *self.brats_pickers.values(), self.lgg_rgb, *self.lgg_pickers.values(),
             self.device, self.fast, self.tta, self.uncertainty, self.keep_small, buttons, self.progress, self.status, self.results]
        )
        wrap_and_select(self.status)
        self.worker = None
        self._placing = False  # the result layer is being added in steps (see _on_returned)
        self._stop = threading.Event()
        self._pbar = None
        self._closed = False  # the dock (or the whole viewer) was closed: stop the run, touch no Qt widget
        self.native.destroyed.connect(self._on_destroyed)
        self._relay = _ProgressRelay()
        self._relay.step.connect(self._on_progress)

        self.case.changed.connect(self._on_case_changed)
        self.model.changed.connect(self._show_pickers)
        self.model.changed.connect(self._default_tta)
        self.fast.changed.connect(self._default_tta)
        for picker in (*self.brats_pickers.values(), self.lgg_rgb, *self.lgg_pickers.values()):
            picker.changed.connect(self._update_run_label)
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        self.compare_button.changed.connect(self.compare)
        napari_viewer.layers.events.inserted.connect(self._on_inserted)
        napari_viewer.layers.events.removed.connect(self._on_removed)
        napari_viewer.layers.selection.events.active.connect(self._on_active)
        self.reset_choices()
        self._follow_case(self.case.value)
        self.views = ViewFitter(napari_viewer)  # anatomical axis names, upright planes, full contrast range
        _warm_up_in_background()

    # ------------------------------------------------------------------------------ running

    @property
    def is_running(self) -> bool:
        """True from Run until the result is fully in the viewer (or the run failed or was cancelled)."""
        return self.worker is not None or self._placing

    def run(self, _value=None):
        """Capture the inputs, check them, and start the worker; a refusal is a short notification and the
        full sentence under Status."""
        if self.is_running:
            return
        try:
            job = collect_job(self.model.value, *self._picks(), self._labels_layers(), device=self.device.value,
                              tta=bool(self.tta.value), fast=bool(self.fast.value),
                              settings={"uncertainty": bool(self.uncertainty.value),
                                        "keep_small_lesions": bool(self.keep_small.value)})
        except BrainsegInputError as exc:
            self.status.value = str(exc)
            notices.error(notices.headline(exc, notices.CANNOT_RUN), str(exc))
            return
        self._start(job)

    def _default_tta(self, _value=None):
        """TTA as the model's cross-validation chose it (registry), off in the fast setting."""
        self.tta.value = get_spec(self.model.value).tta and not self.fast.value

    def cancel(self, _value=None):
        if self.is_running:
            self._stop.set()
            self.cancel_button.enabled = False
            self.status.value = "Cancelling..."

    def compare(self, _value=None):
        """Arrange the selected (or latest) result over its ground truth."""
        record = self.results.record
        if record is None:
            return
        layer = next((lyr for lyr in self.viewer.layers if lyr.metadata.get("results") is record), None)
        if layer is not None:
            compare_with_truth(self.viewer, layer)

    def _show_record(self, record):
        self.results.show_record(record)
        self.compare_button.enabled = bool(record and record.get("truth"))

    def _start(self, job: Job):
        from napari.qt.threading import thread_worker
        from napari.utils import progress

        self._stop.clear()
        self.run_button.enabled = False
        self.cancel_button.enabled = True
        self.progress.max, self.progress.value = 1, 0
        self.status.value = f"Segmenting {job.case or job.source.name} with {job.model}..."
        self._pbar = progress(desc=f"{job.source.name}: {job.model}")
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
        if self._closed:
            return
        self.progress.max, self.progress.value = max(total, 1), min(done, max(total, 1))
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
        result, layer = out
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
                self.status.value = f"Done: {layer.name}" + "".join(f"\nNote: {m}" for m in notes(result, job))
                self._show_record(layer.metadata["results"])

        from qtpy.QtCore import QTimer

        QTimer.singleShot(_PLACEMENT_PAUSE_MS, show)
        QTimer.singleShot(2 * _PLACEMENT_PAUSE_MS, extras)
        QTimer.singleShot(3 * _PLACEMENT_PAUSE_MS, finish)

    def _on_errored(self, exc: Exception):
        if self._closed:
            return
        if isinstance(exc, InterruptedError):
            self.status.value = "Cancelled."  # the results table keeps the earlier results
            notices.info(notices.CANCELLED, "Segmentation cancelled; no layer was added.")
            return
        message = first_line(exc, limit=None)
        if not isinstance(exc, BrainsegInputError):
            message = f"Segmentation failed: {type(exc).__name__}: {message}"
        self.status.value = "Failed: " + message
        notices.error(notices.headline(exc, notices.RUN_FAILED, message), message)

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
        from ..engine import segment, volumes  # noqa: F401 - volumes: the results table's MONAI metrics
    except Exception:  # noqa: BLE001 - a broken install is reported by the first Run, as one notification
        pass


def _unique_name(name: str, existing: set[str]) -> str:
    if name not in existing:
        return name
    n = 2
    while f"{name} [{n}]" in existing:
        n += 1
    return f"{name} [{n}]"
