"""A dock-widget run cut short or failing: Cancel (a stand-in and the real BraTS model), closing the
viewer, Run pressed twice, the source layer removed, the result layer deleted or the dock closed while the
result is added, errors in the worker - each ends in one notification or a clean stop: no crash, no orphan
thread, no layer lost or overwritten. ``segment`` is replaced by ``SlowSegment`` where the model is not
the point.

Tests marked ``hardening`` are rows of the troubleshooting table (``tests/hardening_catalogue.py``).
"""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import QThreadPool, QTimer

from napari_brainseg.engine import segment as engine_segment

from .helpers import add_widget, shown_whole_in_a_toast
from .widget_helpers import RUN_TIMEOUT_MS, TIMEOUT_MS, GapRecorder, SlowSegment, names


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


@pytest.mark.hardening
def test_cancel_during_run(lgg_viewer, qtbot, slow, errors):
    widget = add_widget(lgg_viewer)
    before = names(lgg_viewer)
    widget.run()
    qtbot.waitUntil(slow.started.is_set, timeout=TIMEOUT_MS)
    widget.cancel()
    qtbot.waitUntil(lambda: not widget.is_running, timeout=TIMEOUT_MS)
    assert slow.stopped and names(lgg_viewer) == before and widget.status.value == "Cancelled." and not errors
    assert widget.run_button.enabled and no_worker_threads(qtbot)


@pytest.mark.hardening
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


@pytest.mark.hardening
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


@pytest.mark.hardening
def test_remove_source_layer_during_run(lgg_viewer, qtbot, slow, errors):
    widget = add_widget(lgg_viewer)
    widget.run()
    qtbot.waitUntil(slow.started.is_set, timeout=TIMEOUT_MS)
    lgg_viewer.layers.remove("P FLAIR")
    slow.release.set()
    qtbot.waitUntil(lambda: not widget.is_running, timeout=TIMEOUT_MS)
    assert names(lgg_viewer) == ["P pre-contrast", "P post-contrast", "P FLAIR tumour (lgg-unet2d)"]
    assert lgg_viewer.layers[-1].data.shape == (2, 32, 32) and not errors and no_worker_threads(qtbot)


@pytest.mark.hardening
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


@pytest.mark.hardening
def test_worker_error_is_one_notification(make_napari_viewer, qtbot, errors, error_details):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present; the error this provokes needs a machine without one")
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((64, 64, 3), np.uint8), rgb=True, name="slice")
    widget = add_widget(viewer)
    widget.device.value = "cuda"
    widget.run()
    qtbot.waitUntil(lambda: not widget.is_running, timeout=RUN_TIMEOUT_MS)
    assert errors == ["Segmentation failed; see Status"] and shown_whole_in_a_toast(errors[0])
    assert "no CUDA GPU is available" in error_details()[0] and "no CUDA GPU is available" in widget.status.value
    assert [layer.name for layer in viewer.layers] == ["slice"]
    assert widget.run_button.enabled


@pytest.mark.hardening
def test_cancel_adds_no_layer(make_napari_viewer, qtbot, brats18_case, errors, monkeypatch):
    import napari.utils.notifications as notifications

    infos: list[str] = []
    monkeypatch.setattr(notifications, "show_info", infos.append)
    viewer = make_napari_viewer()
    viewer.open(str(brats18_case), plugin="napari-brainseg")
    widget = add_widget(viewer)
    before = [layer.name for layer in viewer.layers]
    steps = []
    widget._relay.step.connect(lambda done, total: steps.append((done, total)))
    with GapRecorder() as gaps:
        widget.run()
        assert not widget.run_button.enabled
        # the network is running: a window is done ((0, total) comes before the first one)
        qtbot.waitUntil(lambda: any(done > 0 for done, _ in steps), timeout=RUN_TIMEOUT_MS)
        widget.cancel()
        qtbot.waitUntil(lambda: not widget.is_running, timeout=RUN_TIMEOUT_MS)
    done, total = steps[-1]
    assert 0 < done < total, steps  # stopped part-way through the sliding window, not after it
    assert [layer.name for layer in viewer.layers] == before
    assert widget.status.value == "Cancelled." and widget.run_button.enabled
    assert infos == ["Segmentation cancelled"] and not errors and shown_whole_in_a_toast(infos[0])
    print(f"cancelled after {done} of {total} steps; {gaps.summary()}")


@pytest.mark.hardening
def test_result_steps_stop_when_the_layer_is_deleted(make_napari_viewer, qtbot, errors):
    """Deleting the result while it is still being placed neither errors nor leaves the widget running."""
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((64, 64, 3), np.uint8), rgb=True, name="slice")
    widget = add_widget(viewer)
    viewer.layers.events.inserted.connect(
        lambda event: "tumour" in event.value.name and QTimer.singleShot(0, lambda: viewer.layers.remove(event.value))
    )
    widget.run()
    qtbot.waitUntil(lambda: not widget.is_running, timeout=RUN_TIMEOUT_MS)
    assert [layer.name for layer in viewer.layers] == ["slice"] and not errors
    assert widget.run_button.enabled and "slice tumour" in widget.status.value


@pytest.mark.hardening
def test_result_is_shown_even_if_the_dock_closes_meanwhile(make_napari_viewer, qtbot, errors):
    """The layer is added hidden and shown one step later; closing the dock in between must not lose it."""
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((64, 64, 3), np.uint8), rgb=True, name="slice")
    dock, widget = viewer.window.add_plugin_dock_widget("napari-brainseg", "Segment tumour")
    closed = []
    widget.native.destroyed.connect(lambda *_: closed.append(True))
    viewer.layers.events.inserted.connect(
        lambda event: "tumour" in event.value.name
        and QTimer.singleShot(0, lambda: (viewer.window.remove_dock_widget(dock), widget.native.deleteLater()))
    )
    widget.run()
    name = "slice tumour (lgg-unet2d)"
    qtbot.waitUntil(lambda: bool(closed) and name in viewer.layers, timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(lambda: viewer.layers[name].visible, timeout=RUN_TIMEOUT_MS)
    assert not errors
