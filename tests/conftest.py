"""Shared fixtures: the real data in ../shared/data (or $BRAINSEG_DATA), each real case read once.

BraTS cases are kept xz-packed there; one 2018 case and the 2023 case are unpacked once per session
into a temporary folder with the data set's own ``unpack.sh``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

# The test extra installs PyQt6 (napari deprecates PyQt5). An older .venv may still hold PyQt5, which
# qtpy prefers when nothing is imported yet; this keeps qtpy and pytest-qt on one Qt 6 binding
# (qtpy falls back to another installed binding when PyQt6 is absent).
os.environ.setdefault("QT_API", "pyqt6")

# napari saves its settings (reset by every `make_napari_viewer`) to one file per environment under
# ~/.config/napari, rewritten in place: parallel workers (pytest-xdist) would read each other's half-written
# files, and a developer's own settings would be overwritten. Each test process gets its own file instead
# (NAPARI_CONFIG, read when napari.settings is first imported - never before this conftest; the CLI and
# benchmark processes the tests start inherit it).
_NAPARI_SETTINGS = Path(tempfile.mkdtemp(prefix="brainseg-tests-napari-"))
os.environ["NAPARI_CONFIG"] = str(_NAPARI_SETTINGS / "settings.yaml")
atexit.register(shutil.rmtree, _NAPARI_SETTINGS, ignore_errors=True)

# Under pytest-xdist each worker gets its share of the CPUs for torch's (OpenMP) threads, and the CLI,
# training and benchmark processes it starts inherit that: N workers each running torch on all N CPUs
# spin-wait on each other's threads (measured on 2 CPUs: 1.7 times the CPU time for the suite). Set before torch is
# imported (nothing before this conftest imports it); an OMP_NUM_THREADS already set is kept.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, _cpus // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))))

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("BRAINSEG_DATA") or REPO.parent / "shared" / "data")
BRATS18_CASE = "Brats18_2013_20_1"
BRATS23_CASE = "BraTS-GLI-00001-000"
LGG_PATIENT = "TCGA_CS_4941_19960909"  # 23 slices: enough to test that slice 10 follows 9


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (scripts/test.sh passes it): one pytest-xdist worker per CPU this process may run on.

    ``os.sched_getaffinity`` follows taskset and a container's cpuset; xdist's own count (psutil's physical
    cores) does not. A run that names test files or node ids, or selects with ``-k``, stays in this process
    (0 workers): each worker would import napari and torch and collect the tests again, which costs more
    than a few tests gain. ``-n N`` always gives N workers.
    """
    named = config.args_source == pytest.Config.ArgsSource.ARGS and any(
        "::" in arg or (config.invocation_params.dir / arg).is_file() for arg in config.args
    )
    if named or config.option.keyword:
        return 0
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's worker reads the groups
def pytest_collection_modifyitems(config, items):
    """Under ``--dist loadgroup`` (scripts/test.sh) each test goes to whichever worker is free, except
    the tests that share a module-scoped fixture (or a class-scoped one): they form one group per module
    and run on one worker, so the fixture is built once and what it wrote stays where they look. Session
    fixtures are built once per worker, each in its own temporary folder."""
    if getattr(config.option, "dist", "no") != "loadgroup":
        return
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        info = getattr(item, "_fixtureinfo", None)  # pytest's own record of the fixtures a test uses
        scopes = {d.scope for defs in info.name2fixturedefs.values() for d in defs} if info else {"module"}
        if scopes & {"module", "class"}:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"real data folder {DATA} is absent (set BRAINSEG_DATA to where shared/data lives)")
    return DATA


@pytest.fixture(scope="session")
def brats_root(data_dir, tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("brats")
    subprocess.run(["bash", str(data_dir / "brats" / "unpack.sh"), str(dest), BRATS18_CASE, BRATS23_CASE], check=True)
    return dest


@pytest.fixture(scope="session")
def brats18_case(brats_root) -> Path:
    return brats_root / "BraTS2018" / BRATS18_CASE


@pytest.fixture(scope="session")
def brats23_case(brats_root) -> Path:
    return brats_root / "BraTS2023" / BRATS23_CASE


@pytest.fixture(scope="session")
def brats_case_folder(request, tmp_path_factory) -> Path:
    """A BraTS-named case folder for tests that need one but none of its values: the real 2018 case when
    the data folder is there, else the package's phantom written like one - so they run without the data."""
    if DATA.is_dir():
        return request.getfixturevalue("brats18_case")
    from napari_brainseg.phantoms import write_brats_phantom

    return write_brats_phantom(tmp_path_factory.mktemp("phantom"))


@pytest.fixture(scope="session")
def brats18_layers(brats18_case):
    from napari_brainseg.plugin.readers import read_brats_folder

    return read_brats_folder(brats18_case)


@pytest.fixture(scope="session")
def lgg_patient(data_dir) -> Path:
    return data_dir / "lgg" / "kaggle_3m" / LGG_PATIENT


@pytest.fixture
def errors(monkeypatch):
    """Messages the widget shows as napari error notifications (short headlines: plugin/notices.py)."""
    import napari.utils.notifications as notifications

    shown: list[str] = []
    monkeypatch.setattr(notifications, "show_error", shown.append)
    return shown


@pytest.fixture
def error_details(caplog):
    """A function giving the full sentences behind the error notifications, as the plugin logs them."""
    import logging

    caplog.set_level(logging.ERROR, logger="napari_brainseg")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "napari_brainseg" and r.levelno >= logging.ERROR]


@pytest.fixture(scope="session")
def brats18_cropped(brats18_case, tmp_path_factory) -> Path:
    """The 2018 case cut to its brain's bounding box (plus a margin): the same scan, cheaper to segment."""
    from .scan_variants import crop_case

    return crop_case(brats18_case, tmp_path_factory.mktemp("cropped") / BRATS18_CASE)


@pytest.fixture
def cohort(tmp_path):
    """Three tiny cases for the CLI: two BraTS, one LGG (tests/cli_helpers.py runs it)."""
    from .cli_helpers import PATIENT
    from .tiny_cases import write_brats_case, write_lgg_patient

    root = tmp_path / "cohort"
    write_brats_case(root, "Brats18_Tiny_1")
    write_brats_case(root, "Brats18_Tiny_2")
    write_lgg_patient(root, PATIENT, n_slices=3, size=32)
    return root


@pytest.fixture
def slow(monkeypatch):
    """``segment`` replaced by a stand-in that steps until released (tests/widget_helpers.py: SlowSegment)."""
    from napari_brainseg.engine import segment as engine_segment

    from .widget_helpers import SlowSegment

    fake = SlowSegment()
    monkeypatch.setattr(engine_segment, "segment", fake)
    yield fake
    fake.release.set()
