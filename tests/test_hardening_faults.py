"""Hardening, files and faults (issue 12): ordinary file modes, hidden files, real signals sent to a CLI
process, two runs claiming one output, a full disk, over-long names, a closed stdout pipe.

Processes, signals, pipes and file systems are real: the CLI runs as a child process (``tests/cli_child.py``)
and is sent SIGINT/SIGTERM/SIGKILL while it writes; the full disk is a 2 MiB tmpfs. Each test id is a
row of the troubleshooting table (``tests/hardening_catalogue.py``).
"""

from __future__ import annotations

import csv
import errno
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import tifffile

from napari_brainseg.cli import main
from napari_brainseg.engine import segment as engine_segment
from napari_brainseg.io import cases as io_cases
from napari_brainseg.io import tempfiles
from napari_brainseg.io.brats import read_brats_case
from napari_brainseg.io.writer import write_labels
from napari_brainseg.plugin.writers import (
    napari_write_labels_lgg,
    napari_write_labels_nifti,
)

from .conftest import REPO
from .hardening_data import write_brats_case, write_lgg_patient, write_nifti
from .test_hardening_cli import PATIENT, cohort, error_lines, predict  # noqa: F401, F811 (cohort: a fixture)

OUTPUT_SUFFIXES = (".nii.gz", ".nii", ".tif", ".png")


def stray_files(out: Path) -> list[str]:
    """Anything under ``out`` that is not a finished output: hidden entries (temporaries) and empty folders."""
    stray = [str(p.relative_to(out)) for p in out.rglob("*") if p.name.startswith(".")]
    return stray + [str(p.relative_to(out)) for p in out.rglob("*") if p.is_dir() and not any(p.iterdir())]


def assert_outputs_whole(out: Path, n_slices=3) -> list[str]:
    """Every output under ``out`` is complete (NIfTI data loads, PNG has its end chunk, an LGG folder has all
    its masks, each a readable TIFF, volumes.csv whole rows); returns the names of the finished case outputs."""
    finished = []
    for path in sorted(out.iterdir()):
        if path.name.startswith("."):
            continue
        if path.name.endswith(".nii.gz"):
            image = nib.load(str(path))
            assert np.asarray(image.dataobj).shape == image.shape == (20, 24, 16), path
        elif path.suffix == ".png":
            data = path.read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[-8:-4] == b"IEND", path
        elif path.name == "volumes.csv":  # the run's table, rewritten whole after each finished case
            from napari_brainseg.engine.volumes import COLUMNS

            with open(path, newline="") as fh:
                rows = list(csv.DictReader(fh))
            assert rows and all(list(row) == list(COLUMNS) and None not in row.values() for row in rows), path
            continue  # a table, not a case's output
        elif path.is_dir():
            masks = sorted(path.iterdir())
            assert [m.name for m in masks] == [f"{path.name}_{n}_mask.tif" for n in range(1, n_slices + 1)], masks
            assert all(tifffile.imread(m).shape == (32, 32) for m in masks)
        else:
            raise AssertionError(f"unexpected output {path}")
        finished.append(path.name)
    return finished


# ------------------------------------------------------------------------------ file modes


def test_outputs_get_the_ordinary_file_mode(tmp_path, capsys):
    write_brats_case(tmp_path / "in", "Brats18_Tiny_1")
    write_lgg_patient(tmp_path / "in", PATIENT, n_slices=2, size=32)
    labels = np.zeros((4, 5, 6), np.uint8)
    meta = {"brainseg": {"patient_id": "P", "slice_numbers": [1, 2, 3, 4]}}
    for umask in (0o022, 0o027):
        out = tmp_path / f"out-{umask:03o}"
        previous = os.umask(umask)
        try:
            assert predict(capsys, tmp_path / "in", "--output", out)[0] == 0
            write_labels(out / "api.nii.gz", labels)  # the Python API
            napari_write_labels_nifti(str(out / "saved.nii"), labels, {"scale": (1, 1, 1)})  # napari's File > Save
            napari_write_labels_lgg(str(out / "saved-masks"), labels, {"metadata": meta})
        finally:
            os.umask(previous)
        files = [p for p in out.rglob("*") if p.is_file()]
        folders = [p for p in out.rglob("*") if p.is_dir()]
        # CLI BraTS, CLI LGG, the CLI's volumes.csv, API, napari x 2
        assert len(files) == 2 + 3 + 1 + 1 + 1 + 4 and len(folders) == 2
        assert {oct(stat.S_IMODE(os.stat(p).st_mode)) for p in files} == {oct(0o666 & ~umask)}, files
        assert {oct(stat.S_IMODE(os.stat(p).st_mode)) for p in folders} == {oct(0o777 & ~umask)}


# ------------------------------------------------------------------------------ junk beside the data


def test_hidden_files_are_ignored(tmp_path, capsys):
    brats = write_brats_case(tmp_path / "in", "Brats18_Tiny_1")
    lgg = write_lgg_patient(tmp_path / "in", PATIENT, n_slices=2, size=32)
    # what macOS leaves on a shared or USB drive: a 4 KiB AppleDouble "._<name>" per file, and .DS_Store
    for folder in (brats, lgg):
        for path in list(folder.iterdir()):
            (folder / f"._{path.name}").write_bytes(b"\x00\x05\x16\x07" + b"\x00" * 4092)
        (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    assert sorted(io_cases.read_case(brats).images) == ["flair", "t1", "t1ce", "t2"]
    assert io_cases.read_case(lgg).slice_numbers == [1, 2]
    status, _, err = predict(capsys, tmp_path / "in", "--output", tmp_path / "out")
    assert status == 0 and not error_lines(err) and "summary: 2 of 2" in err, err


def test_second_segmentation_file_is_noted_not_fatal(tmp_path, capsys):
    seg = np.zeros((20, 24, 16), np.uint8)
    seg[8:12, 10:14, 6:9] = 2
    folder = write_brats_case(tmp_path / "in", "Brats18_Tiny_1", seg=seg)
    write_nifti(folder / "Brats18_Tiny_1_seg.nii", np.zeros_like(seg))  # what an unzipping tool leaves beside it
    case = read_brats_case(folder)
    assert case.files.seg.name == "Brats18_Tiny_1_seg.nii.gz" and case.seg.max() == 2  # the original is the truth
    status, _, err = predict(capsys, folder, "--output", tmp_path / "out")
    assert status == 0 and not error_lines(err), err
    notes = [line for line in err.splitlines() if "segmentation files" in line]
    assert notes == [
        "note: Brats18_Tiny_1: two segmentation files; Brats18_Tiny_1_seg.nii.gz is the ground truth "
        "(for the Dice), Brats18_Tiny_1_seg.nii is ignored"
    ]
    assert (tmp_path / "out" / "Brats18_Tiny_1.nii.gz").is_file()


# ------------------------------------------------------------------------------ LGG masks: all or nothing


def test_lgg_masks_all_or_nothing_when_interrupted(tmp_path, capsys, monkeypatch):
    folder = write_lgg_patient(tmp_path / "in", PATIENT, n_slices=6, size=32)
    out = tmp_path / "out"
    real, calls = tifffile.imwrite, []

    def imwrite(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:  # Ctrl-C after three of six masks
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(tifffile, "imwrite", imwrite)
    status, _, err = predict(capsys, folder, "--output", out)
    assert status == 130 and "interrupted" in error_lines(err)[0]
    assert list(out.iterdir()) == []  # no patient folder with 3 of 6 masks, no temporary folder


# ------------------------------------------------------------------------------ real signals


def start_cli(*args, slow_dir=None, slow_s=0.4, stdout=subprocess.DEVNULL) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if slow_dir is not None:
        env.update(BRAINSEG_TEST_SLOW_DIR=str(slow_dir), BRAINSEG_TEST_SLOW_S=str(slow_s))
    command = [sys.executable, "-m", "tests.cli_child", "predict", *map(str, args), "--device", "cpu"]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True)


def wait_for(condition, process, timeout=180.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the CLI ended first: {process.stderr.read()}"
        assert time.monotonic() < deadline, "timed out waiting for the moment to signal"
        time.sleep(0.01)


def _entries(out):
    return list(out.iterdir()) if out.is_dir() else []


MOMENTS = {  # when to signal: a condition on the output folder (as true for the code before the fix)
    "while-writing-a-nifti": lambda out: any(p.name.startswith(".") and p.is_file() for p in _entries(out)),
    "while-writing-lgg-masks": lambda out: any(p.is_dir() and len(list(p.iterdir())) >= 2 for p in _entries(out)),
    "between-cases": lambda out: (out / "Brats18_Tiny_1_overlay.png").exists(),
}
SIGNAL_CASES = {
    "sigint-while-writing-a-nifti": (signal.SIGINT, "while-writing-a-nifti"),
    "sigterm-while-writing-a-nifti": (signal.SIGTERM, "while-writing-a-nifti"),
    "sigterm-while-writing-lgg-masks": (signal.SIGTERM, "while-writing-lgg-masks"),
    "sigint-between-cases": (signal.SIGINT, "between-cases"),
    "sigkill-while-writing-a-nifti": (signal.SIGKILL, "while-writing-a-nifti"),
    "sigkill-while-writing-lgg-masks": (signal.SIGKILL, "while-writing-lgg-masks"),
}


@pytest.mark.parametrize("signum, moment", SIGNAL_CASES.values(), ids=SIGNAL_CASES.keys())
def test_real_signal_leaves_complete_outputs_only(signum, moment, cohort, tmp_path, capsys):
    out = tmp_path / "out"
    process = start_cli(cohort, "--output", out, slow_dir=out)
    wait_for(lambda: MOMENTS[moment](out), process)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    finished = assert_outputs_whole(out)  # complete or absent, never partial
    if signum == signal.SIGKILL:
        assert process.returncode == -signal.SIGKILL
        # what a kill leaves behind is hidden and never named like an output, so nothing reads it as one
        leftovers = [p.name for p in out.rglob(".*")]
        assert leftovers and all(tempfiles.is_temporary(p) for p in out.rglob(".*"))
        assert not [name for name in leftovers if name.endswith(OUTPUT_SUFFIXES)]
    else:
        assert process.returncode == 128 + signum, err
        lines = error_lines(err)
        assert len(lines) == 1 and lines[0].startswith(f"error: interrupted by {signal.Signals(signum).name};"), err
        assert "Traceback" not in err and stray_files(out) == []
    # a rerun (in this process: it has torch loaded already) finishes the cohort and removes what the
    # killed run left
    status, _, err = predict(capsys, cohort, "--output", out, "--skip-existing")
    assert status == 0, err
    assert err.count("skipped:") == len([n for n in finished if n.endswith("_overlay.png")])
    assert len(assert_outputs_whole(out)) == 6 and stray_files(out) == []


def test_stale_temporaries_of_dead_runs_are_removed_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    stale_file = tmp_path / f".brainseg-{dead_pid}-0123abcd.tmp"
    stale_folder = tmp_path / f".brainseg-{dead_pid}-4567abcd.tmp"
    stale_file.write_bytes(b"half")
    (stale_folder).mkdir()
    (stale_folder / "x_1_mask.tif").write_bytes(b"half")
    live = tempfiles.new_temp_file(tmp_path)  # this process's: maybe another run, still writing
    user_file = tmp_path / ".notes.tmp"
    user_file.write_text("not ours")
    removed = tempfiles.remove_stale(tmp_path)
    assert sorted(removed) == sorted([stale_file, stale_folder])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, ".notes.tmp"])
    assert not live.name.endswith(OUTPUT_SUFFIXES)


# ------------------------------------------------------------------------------ two runs, one output


def test_two_runs_one_output_exactly_one_wins(cohort, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    # slow writes keep both runs past their "does it exist?" check before either claims a name
    runs = [start_cli(cohort, "--output", out, slow_dir=out, slow_s=1.0, stdout=subprocess.PIPE) for _ in range(2)]
    results = [run.communicate(timeout=300) for run in runs]
    listed = [stdout.splitlines() for stdout, _ in results]
    for output in ("Brats18_Tiny_1.nii.gz", "Brats18_Tiny_2.nii.gz", PATIENT):
        winners = [i for i, lines in enumerate(listed) if str(out / output) in lines]
        assert len(winners) == 1, (output, results)
        loser_errors = error_lines(results[1 - winners[0]][1])
        case = output.removesuffix(".nii.gz")
        assert [e for e in loser_errors if e.startswith(f"error: {case}: ") and "already exists" in e], results
    assert sorted(run.returncode for run in runs) in ([0, 1], [1, 1]), results
    assert len(assert_outputs_whole(out)) == 6 and stray_files(out) == []


# ------------------------------------------------------------------------------ full disk


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs: a real file system that runs out of space (needs root to mount)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root; no equivalent for a whole-disk limit here")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_disk_full_leaves_no_partial_output(small_disk, tmp_path, capsys):
    root = tmp_path / "in"
    write_brats_case(root, "Brats18_Tiny_1")
    write_lgg_patient(root, PATIENT, n_slices=40, size=256)  # 40 masks of 64 KiB: more than the 2 MiB
    out = small_disk / "out"
    status, _, err = predict(capsys, root, "--output", out)
    lines = error_lines(err)
    assert status == 1 and len(lines) == 1 and lines[0].startswith(f"error: {PATIENT}: "), err
    assert "No space left on device" in lines[0]
    # the BraTS case fitted (and its volumes.csv rows); the LGG patient left no folder of some masks and no temporary
    kept = ["Brats18_Tiny_1.nii.gz", "Brats18_Tiny_1_overlay.png", "volumes.csv"]
    assert sorted(p.name for p in out.iterdir()) == kept
    # a NIfTI or PNG that does not fit either: fill the disk to the last byte first
    write_brats_case(root, "Brats18_Tiny_2")
    fd = os.open(small_disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 512):
            pass
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    status, _, err = predict(capsys, root / "Brats18_Tiny_2", "--output", out)
    assert status == 1 and "No space left on device" in error_lines(err)[0], err
    assert sorted(p.name for p in out.iterdir()) == kept
    with open(out / "volumes.csv", newline="") as fh:  # the earlier table, whole
        assert {row["case"] for row in csv.DictReader(fh)} == {"Brats18_Tiny_1"}


# ------------------------------------------------------------------------------ smaller faults


def test_long_case_id_written_or_refused_before_the_model(tmp_path, capsys, monkeypatch):
    # 230 bytes: its outputs fit the 255-byte name limit (a temporary named after them did not)
    fits = "TCGA_" + "x" * 225
    write_lgg_patient(tmp_path / "in", fits, n_slices=2, size=32, masks=False)
    status, _, err = predict(capsys, tmp_path / "in", "--output", tmp_path / "out")
    assert status == 0 and len(fits.encode()) == 230, err
    assert sorted(p.name for p in (tmp_path / "out" / fits).iterdir()) == [f"{fits}_{n}_mask.tif" for n in (1, 2)]
    # 246 bytes: "<id>_1.tif" fits, "<id>_1_mask.tif" does not; refused before the model runs
    too_long = "TCGA_" + "y" * 241
    write_lgg_patient(tmp_path / "in2", too_long, n_slices=2, size=32, masks=False)
    ran = []
    monkeypatch.setattr(engine_segment, "segment_case", lambda *a, **k: ran.append(1))
    status, _, err = predict(capsys, tmp_path / "in2", "--output", tmp_path / "out2")
    lines = error_lines(err)
    assert status == 1 and len(lines) == 1 and "more than the 255 the file system allows" in lines[0], err
    assert ran == [] and list((tmp_path / "out2").iterdir()) == []


def test_device_cuda_without_cuda_is_checked_once_before_any_work(cohort, tmp_path, capsys, monkeypatch):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    read = []
    monkeypatch.setattr(io_cases, "read_case", lambda *a, **k: read.append(1))
    status = main(["predict", str(cohort), "--output", str(tmp_path / "out"), "--device", "cuda"])
    err = capsys.readouterr().err
    assert status == 2 and error_lines(err) == [
        "error: device 'cuda' was requested but no CUDA GPU is available; use 'auto' or 'cpu'"
    ], err
    assert read == [] and list((tmp_path / "out").iterdir()) == []


def test_closed_stdout_pipe_is_not_an_error(cohort, tmp_path):
    out = tmp_path / "out"
    process = start_cli(cohort, "--output", out, "--no-overlay", stdout=subprocess.PIPE)
    first = process.stdout.readline()  # as `| head -1` does: one line, then the pipe is closed
    process.stdout.close()
    err = process.stderr.read()
    process.wait(timeout=120)
    assert first.strip() == str(out / "Brats18_Tiny_1.nii.gz")
    assert process.returncode == 0 and not error_lines(err) and "summary: 3 of 3" in err, err
    assert "Broken pipe" not in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["Brats18_Tiny_1.nii.gz", "Brats18_Tiny_2.nii.gz", PATIENT, "volumes.csv"]
