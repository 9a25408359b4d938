"""Widget responsiveness: the longest event-loop stall while a BraTS case segments in the napari widget.

    python -m benchmarks.widget_responsiveness [--case DIR | --brats-root DIR ...] [--repeats 1]
                                               [--device cpu] [--interval-ms 20] [--target-ms 100]
                                               [--out JSON] [--quick]

Opens the case in a real napari viewer with the plugin's reader (in a process that has not imported
torch, as when napari starts), docks "Segment tumour", and runs a QTimer on the main thread: the gap
between two ticks is how long the event loop could not repaint or react. Measured: docking the
widget (torch and MONAI then load in a background thread), each Run (split into the time the network
runs and the time the result layer is being added), and, as the floor nothing in a plugin can go
below, napari's own ``viewer.add_labels`` of the same array. Needs a display: without $DISPLAY the
script re-runs itself under ``xvfb-run``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from . import common


def _ensure_display(argv: list[str]) -> None:
    if os.environ.get("DISPLAY") or os.environ.get("QT_QPA_PLATFORM") or os.environ.get("BRAINSEG_NO_XVFB"):
        return
    xvfb = shutil.which("xvfb-run")
    if not xvfb:
        raise SystemExit("no $DISPLAY and no xvfb-run: install Xvfb or set QT_QPA_PLATFORM=offscreen")
    env = dict(os.environ, BRAINSEG_NO_XVFB="1")
    cmd = [xvfb, "-a", "-s", "-screen 0 1280x1024x24", *common.module_command("widget_responsiveness"), *argv]
    sys.exit(subprocess.run(cmd, env=env, cwd=common.REPO).returncode)


class TickRecorder:
    """A QTimer on the main thread; the gap between two ticks is how long the event loop was blocked."""

    def __init__(self, interval_ms: int):
        from qtpy.QtCore import QTimer

        self.ticks: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))

    def start(self):
        self.ticks = [time.perf_counter()]
        self.timer.start()

    def stop(self):
        self.timer.stop()
        self.ticks.append(time.perf_counter())

    def summary(self, ending_from: float = -np.inf, ending_before: float = np.inf) -> dict:
        """Gaps whose closing tick falls in [ending_from, ending_before): a gap belongs to the phase it ends in."""
        t = np.asarray(self.ticks)
        gaps = np.diff(t)
        keep = (t[1:] >= ending_from) & (t[1:] < ending_before)
        if not keep.any():
            return {"max_gap_ms": None, "p99_gap_ms": None, "ticks": 0}
        g = gaps[keep]
        return {"max_gap_ms": round(float(g.max()) * 1000, 1), "p99_gap_ms": round(float(np.percentile(g, 99)) * 1000, 1),
                "ticks": int(keep.sum())}


def _spin(loop, until, timeout_s: float):
    """Run the Qt event loop until ``until()`` or the timeout; returns whether ``until()`` came true."""
    from qtpy.QtCore import QTimer

    poll = QTimer()
    poll.setInterval(10)
    poll.timeout.connect(lambda: until() and loop.quit())
    guard = QTimer()
    guard.setSingleShot(True)
    guard.timeout.connect(loop.quit)
    poll.start()
    guard.start(int(timeout_s * 1000))
    loop.exec_()
    poll.stop()
    guard.stop()
    return bool(until())


def _warm_up_running() -> bool:
    return any(t.name == "brainseg-warm-up" for t in threading.enumerate())


def measure_open_widget(viewer, loop, interval_ms: int) -> tuple:
    """Docking the widget: how long the call blocks, then the longest gap while torch/MONAI load behind it."""
    torch_before = "torch" in sys.modules
    ticks = TickRecorder(interval_ms)
    start = time.perf_counter()
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-brainseg", "Segment tumour")
    docked = time.perf_counter()
    ticks.start()
    _spin(loop, lambda: not _warm_up_running(), 120)
    ticks.stop()
    return widget, {
        "torch_imported_before": torch_before,
        "dock_call_ms": round((docked - start) * 1000, 1),
        "warm_up_s": round(ticks.ticks[-1] - docked, 2),
        **{f"warm_up_{k}": v for k, v in ticks.summary().items()},
    }


def measure_run(viewer, widget, loop, device: str, interval_ms: int, timeout_s: float) -> dict:
    """Press Run; gaps while the network runs and while the result layer is being added, separately."""
    widget.device.value = device
    inserted: list[float] = []
    on_insert = lambda _event: inserted.append(time.perf_counter())  # noqa: E731
    viewer.layers.events.inserted.connect(on_insert)
    ticks = TickRecorder(interval_ms)
    ticks.start()
    start = ticks.ticks[0]
    widget.run()
    finished = _spin(loop, lambda: not widget.is_running, timeout_s)
    ticks.stop()
    viewer.layers.events.inserted.disconnect(on_insert)
    added_at = inserted[0] if inserted else np.inf
    overall, inference, adding = ticks.summary(), ticks.summary(ending_before=added_at), ticks.summary(ending_from=added_at)
    return {
        "device": device,
        "run_s": round(ticks.ticks[-1] - start, 2),
        "finished": finished,
        "layer_added": bool(inserted),
        "timer_interval_ms": interval_ms,
        **overall,
        "inference_max_gap_ms": inference["max_gap_ms"],
        "inference_p99_gap_ms": inference["p99_gap_ms"],
        "adding_max_gap_ms": adding["max_gap_ms"],
        "status": str(widget.status.value),
    }


def measure_napari_floor(viewer, loop, data, layer_kwargs: dict, interval_ms: int) -> dict:
    """napari's own cost of adding a labels layer of the same size: ``viewer.add_labels`` with no plugin code."""
    from qtpy.QtCore import QTimer

    ticks = TickRecorder(interval_ms)
    ticks.start()
    added = []
    QTimer.singleShot(3 * interval_ms, lambda: added.append(viewer.add_labels(data, **layer_kwargs)))
    _spin(loop, lambda: bool(added) and time.perf_counter() - ticks.ticks[0] > 0.5, 10)
    ticks.stop()
    viewer.layers.remove(added[0])
    return ticks.summary()


def measure(case: Path, device: str, repeats: int, interval_ms: int, timeout_s: float) -> dict:
    import napari
    from qtpy.QtCore import QEventLoop

    viewer = napari.Viewer(show=True)
    loop = QEventLoop()
    try:
        viewer.open(str(case), plugin="napari-brainseg")
        for _ in range(20):  # first paint and thumbnails of the opened case, before measuring
            loop.processEvents()
            time.sleep(0.02)
        widget, opening = measure_open_widget(viewer, loop, interval_ms)
        runs = []
        for _ in range(repeats):
            run = measure_run(viewer, widget, loop, device, interval_ms, timeout_s)
            run["case"] = case.name
            runs.append(run)
            _spin(loop, lambda: False, 0.5)  # settle between runs
        result = next((layer for layer in reversed(viewer.layers) if "tumour" in layer.name), None)
        floors = []
        if result is not None:
            kwargs = {"scale": result.scale, "translate": result.translate, "colormap": result.colormap}
            floors = [measure_napari_floor(viewer, loop, result.data.copy(), kwargs, interval_ms) for _ in range(repeats)]
        return {"open_widget": opening, "runs": runs, "napari_add_labels": floors}
    finally:
        viewer.close()


def _verdict(gap_ms, target_ms) -> str:
    return "n/a" if gap_ms is None else "pass" if gap_ms < target_ms else "fail"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_args(parser)
    parser.add_argument("--case", type=Path, default=None, help="BraTS case folder (default: first validation case)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--interval-ms", type=int, default=20)
    parser.add_argument("--target-ms", type=float, default=100.0)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args(argv)
    _ensure_display(argv)

    out = args.out or common.RESULTS / ("quick/widget.json" if args.quick else "widget.json")
    tmp = tempfile.TemporaryDirectory(prefix="brainseg-widget-")
    if args.case:
        case = args.case
    elif args.quick:
        case = common.quick_cases(Path(tmp.name))["brats"]
    else:
        found, _missing = common.brats_val_folders(args.data, args.brats_root, Path(tmp.name), limit=1)
        if not found:
            raise SystemExit("no BraTS validation case found: give --case or --brats-root")
        case = found[0]

    # measured first, in a process that has not imported torch yet, as when napari starts
    measured = measure(case, args.device, 1 if args.quick else args.repeats, args.interval_ms, args.timeout)
    for run in measured["runs"]:
        if not run["finished"]:
            run["result"] = "timed out"
        else:
            run["result_while_running"] = _verdict(run["inference_max_gap_ms"], args.target_ms)
            run["result"] = _verdict(run["max_gap_ms"], args.target_ms)
        if args.quick:
            run["result"] = "n/a (--quick phantom): " + run["result"]
        print(f"{run['case']}: run {run['run_s']} s, max gap {run['max_gap_ms']} ms (while the network runs "
              f"{run['inference_max_gap_ms']} ms, adding the layer {run['adding_max_gap_ms']} ms)", file=sys.stderr)
    payload = {
        "benchmark": "widget",
        "command": common.command_line("widget_responsiveness", argv),
        "quick": args.quick,
        "machine": common.machine_description(),
        "models": common.model_cards(),
        "display": os.environ.get("DISPLAY") or os.environ.get("QT_QPA_PLATFORM"),
        "target_ms": args.target_ms,
        "definition": "largest interval between ticks of a QTimer (interval --interval-ms) on the main thread. "
                      "Run: from pressing Run until the result layer is fully added, split at the moment the "
                      "layer is inserted (inference = before, adding = after). open_widget: while the dock opens "
                      "and torch/MONAI load in the background. napari_add_labels: viewer.add_labels of the same "
                      "array with no plugin code, napari's own floor for adding such a layer on this machine.",
        "case": case.name,
        **measured,
    }
    common.write_json(out, payload)
    tmp.cleanup()

    from . import report

    print(report.render_widget(payload))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
