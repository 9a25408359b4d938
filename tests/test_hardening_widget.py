"""Hardening, dock widget: faults during a run (Cancel, closing the viewer, Run twice, removing the source
layer) and bad layers end in one notification or a clean stop - no crash, no orphan thread, no layer
lost or overwritten. ``segment`` is replaced by a controllable stand-in where the model is not the point.

Each test id is a row of the README's troubleshooting table (see ``tests/hardening_catalogue.py``).
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from qtpy.QtCore import QThreadPool

from napari_brainseg.engine import segment as engine_segment

from .helpers import add_widget
from .model_card import LGG_VAL_PATIENT, lgg_dice

TIMEOUT_MS = 30_000
MODEL_TIMEOUT_MS = 180_000  # a real model run on a loaded 2-core machine


class SlowSegment:
    """Stands in for ``engine_segment.segment``: steps until released (or stopped), then returns empty labels.

    Gives up by itself after 20 s; ``stopped`` is set only when the widget's stop request ended it.
    """

    def __init__(self, exc: BaseException | None = None):
        self.release = threading.Event()
        self.started = threading.Event()
        self.calls = 0
        self.stopped = False
        self.exc = exc

    def __call__(self, image, model=None, *, progress=None, should_stop=None, **kwargs):
        self.calls += 1
        self.started.set()
        deadline = time.monotonic() + 20
        step = 0
        while not self.release.is_set() and time.monotonic() < deadline:
            if should_stop is not None and should_stop():
                self.stopped = True
                raise InterruptedError("cancelled")
            step += 1
            if progress is not None:
                progress(step % 100, 100)
            time.sleep(0.01)
        if self.exc is not None:
            raise self.exc
        first = np.asarray(image[0] if isinstance(image, list) else image)
        grid = first.shape if isinstance(image, list) else first.shape[:-1]
        return engine_segment.SegmentationResult(
            labels=np.zeros(grid, np.uint8), model="lgg-unet2d", device="cpu", label_convention="lgg",
            settings={"device": "cpu"}, volumes_ml={"FLAIR abnormality (tumour)": 0.0},
        )


@pytest.fixture
def slow(monkeypatch):
    fake = SlowSegment()
    monkeypatch.setattr(engine_segment, "segment", fake)
    yield fake
    fake.release.set()


@pytest.fixture
def lgg_viewer(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_image(np.full((2, 32, 32), 10, np.uint8), name="P pre-contrast")
    viewer.add_image(np.full((2, 32, 32), 20, np.uint8), name="P FLAIR")
    viewer.add_image(np.full((2, 32, 32), 30, np.uint8), name="P post-contrast")
    return viewer


def no_worker_threads(qtbot):
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0, timeout=TIMEOUT_MS)
    return True


def names(viewer):
    return [layer.name for layer in viewer.layers]


def test_cancel_during_run(lgg_viewer, qtbot, slow, errors):
    widget = add_widget(lgg_viewer)
    before = names(lgg_viewer)
    widget.run()
    qtbot.waitUntil(slow.started.is_set, timeout=TIMEOUT_MS)
    widget.cancel()
    qtbot.waitUntil(lambda: not widget.is_running, timeout=TIMEOUT_MS)
    assert slow.stopped and names(lgg_viewer) == before and widget.status.value == "Cancelled." and not errors
    assert widget.run_button.enabled and no_worker_threads(qtbot)


def test_close_viewer_during_run(lgg_viewer, qtbot, slow, errors):
    widget = add_widget(lgg_viewer)
    widget.run()
    qtbot.waitUntil(slow.started.is_set, timeout=TIMEOUT_MS)
    worker = widget.worker
    lgg_viewer.close()  # never released: only the stop request can end the worker
    qtbot.waitUntil(lambda: not worker.is_running, timeout=TIMEOUT_MS)
    # the queued errored/finished signals reach the (deleted) widget; finished, the last, clears .worker
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT_MS)
    assert slow.stopped and no_worker_threads(qtbot) and not errors and not slow.release.is_set()


def test_run_pressed_twice(lgg_viewer, qtbot, slow, errors):
    widget = add_widget(lgg_viewer)
    widget.run()
    widget.run()  # ignored while the first run is in flight
    widget.run_button.changed.emit(True)
    slow.release.set()
    qtbot.waitUntil(lambda: not widget.is_running, timeout=TIMEOUT_MS)
    assert slow.calls == 1 and names(lgg_viewer).count("P FLAIR tumour (lgg-unet2d)") == 1
    widget.run()  # a later run adds a second layer next to the first, never over it
    qtbot.waitUntil(lambda: not widget.is_running, timeout=TIMEOUT_MS)
    assert names(lgg_viewer)[-2:] == ["P FLAIR tumour (lgg-unet2d)", "P FLAIR tumour (lgg-unet2d) [2]"]
    assert not errors and no_worker_threads(qtbot)


def test_remove_source_layer_during_run(lgg_viewer, qtbot, slow, errors):
    widget = add_widget(lgg_viewer)
    widget.run()
    qtbot.waitUntil(slow.started.is_set, timeout=TIMEOUT_MS)
    lgg_viewer.layers.remove("P FLAIR")
    slow.release.set()
    qtbot.waitUntil(lambda: not widget.is_running, timeout=TIMEOUT_MS)
    assert names(lgg_viewer) == ["P pre-contrast", "P post-contrast", "P FLAIR tumour (lgg-unet2d)"]
    assert lgg_viewer.layers[-1].data.shape == (2, 32, 32) and not errors and no_worker_threads(qtbot)


def test_unexpected_worker_error_is_one_notification(lgg_viewer, qtbot, monkeypatch, errors):
    fake = SlowSegment(exc=RuntimeError("something broke\nwith a second line"))
    fake.release.set()
    monkeypatch.setattr(engine_segment, "segment", fake)
    widget = add_widget(lgg_viewer)
    before = names(lgg_viewer)
    widget.run()
    qtbot.waitUntil(lambda: not widget.is_running, timeout=TIMEOUT_MS)
    assert errors == ["Segmentation failed; see Status"]  # the toast napari shows whole (plugin/notices.py)
    assert widget.status.value == "Failed: Segmentation failed: RuntimeError: something broke"
    assert names(lgg_viewer) == before and widget.run_button.enabled


def test_huge_layers_refused_before_the_worker(make_napari_viewer, slow, errors):
    viewer = make_napari_viewer()
    huge = np.broadcast_to(np.zeros(1, np.uint8), (400, 512, 512))  # one byte of memory
    for modality in ("flair", "t1", "t1ce", "t2"):
        viewer.add_image(huge, name=f"big {modality}", contrast_limits=(0, 1))
    widget = add_widget(viewer)
    assert widget.model.value == "brats-unet3d"
    widget.run()
    assert errors == ["Cannot run on these layers; see Status"]
    assert "too large to segment: 400 x 512 x 512" in widget.status.value and "'big flair'" in widget.status.value
    assert not widget.is_running and slow.calls == 0


def test_rgba_layer_is_not_offered_as_three_channels(make_napari_viewer, slow, errors):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((32, 32, 4), np.uint8), rgb=True, name="rgba slice")
    widget = add_widget(viewer)
    widget.model.value = "lgg-unet2d"
    assert widget.lgg_rgb.value is None
    widget.run()
    assert errors == ["Choose the input layers"] and "3-channel layer or three single-channel layers" in widget.status.value
    assert slow.calls == 0 and names(viewer) == ["rgba slice"]


def test_3d_stack_into_2d_model_runs_slice_wise(make_napari_viewer, qtbot, data_dir, errors):
    """Three (Z, H, W) single-channel layers are valid LGG input: the real model segments them slice by slice,
    exactly as segment() does the (Z, H, W, 3) stack, and finds the tumour on them."""
    import napari_brainseg

    case = napari_brainseg.read_case(data_dir / "lgg" / "kaggle_3m" / LGG_VAL_PATIENT)
    stack, truth = case.image[6:9], case.mask[6:9]  # three slices with tumour
    viewer = make_napari_viewer()
    for index, channel in enumerate(("pre-contrast", "FLAIR", "post-contrast")):
        viewer.add_image(stack[..., index], name=f"P {channel}")
    widget = add_widget(viewer)
    assert widget.model.value == "lgg-unet2d"
    widget.device.value = "cpu"  # bit-identical to the segment() call below
    widget.run()
    qtbot.waitUntil(lambda: not widget.is_running, timeout=MODEL_TIMEOUT_MS)
    layer = viewer.layers["P FLAIR tumour (lgg-unet2d)"]
    assert not errors and layer.data.shape == stack.shape[:3]
    np.testing.assert_array_equal(layer.data, napari_brainseg.segment(stack, device="cpu").labels)
    dice = lgg_dice(layer.data, truth)["dice"]
    print(f"three real slices through the widget: Dice {dice:.3f}")
    assert dice > 0.8
