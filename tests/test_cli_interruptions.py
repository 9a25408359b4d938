"""Runs of ``napari-brainseg predict`` cut short or crossed: Ctrl-C mid-cohort or mid-write, real
SIGINT/SIGTERM/SIGKILL sent to a CLI child process while it writes, temporaries of killed runs, two runs
claiming one output, a closed stdout pipe, and ``--skip-existing`` finishing what was cut short. Whatever
happens, every output left is complete or absent.

Processes, signals and pipes are real: the CLI runs as a child process (``tests/cli_child.py``). Tests
marked ``hardening`` are rows of the troubleshooting table (``tests/hardening_catalogue.py``).
"""

from __future__ import annotations

import csv
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import tifffile

from napari_brainseg.engine import segment as engine_segment
from napari_brainseg.io import tempfiles, writer

from .cli_helpers import PATIENT, assert_complete, error_lines, predict, start_cli
from .tiny_cases import no_temp_files, write_brats_case, write_lgg_patient

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


# ------------------------------------------------------------------------------ Ctrl-C


@pytest.mark.hardening
def test_interrupted_mid_cohort(cohort, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    real = engine_segment.segment_case
    calls = []

    def segment_case(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(engine_segment, "segment_case", segment_case)
    status, stdout, err = predict(capsys, cohort, "--output", out)
    assert status == 130 and error_lines(err) and "interrupted" in error_lines(err)[0]
    assert sorted(p.name for p in out.iterdir()) == ["Brats18_Tiny_1.nii.gz", "Brats18_Tiny_1_overlay.png", "volumes.csv"]
    assert_complete(out, "Brats18_Tiny_1")
    assert no_temp_files(out)
    first = (out / "Brats18_Tiny_1.nii.gz").stat().st_mtime_ns

    monkeypatch.setattr(engine_segment, "segment_case", real)
    status, _, err = predict(capsys, cohort, "--output", out)  # neither flag: the finished case is refused
    assert status == 1 and "already exists; pass --overwrite" in err and "summary: 2 of 3" in err
    (out / "Brats18_Tiny_2.nii.gz").unlink()
    (out / "Brats18_Tiny_2_overlay.png").unlink()
    shutil.rmtree(out / PATIENT)
    (out / f"{PATIENT}_overlay.png").unlink()
    status, _, err = predict(capsys, cohort, "--output", out, "--skip-existing")
    assert status == 0 and "skipped: Brats18_Tiny_1" in err and "summary: 2 of 3" in err and "1 skipped" in err
    assert (out / "Brats18_Tiny_1.nii.gz").stat().st_mtime_ns == first  # skipped, not rewritten
    status, _, err = predict(capsys, cohort, "--output", out, "--overwrite")
    assert status == 0 and (out / "Brats18_Tiny_1.nii.gz").stat().st_mtime_ns != first


@pytest.mark.hardening
def test_interrupted_while_writing_leaves_no_file(tmp_path, capsys, monkeypatch):
    write_brats_case(tmp_path / "in", "Brats18_Tiny_1")
    out = tmp_path / "out"
    def publish_file(tmp, target, **_kwargs):
        assert tmp.stat().st_size > 0  # the temporary file is complete ...
        raise KeyboardInterrupt  # ... but Ctrl-C arrives before the rename

    monkeypatch.setattr(writer, "publish_file", publish_file)
    status, _, err = predict(capsys, tmp_path / "in", "--output", out)
    assert status == 130 and not list(out.iterdir())  # neither the target nor a temporary file


@pytest.mark.hardening
def test_partial_lgg_outputs_are_redone_with_skip_existing(tmp_path, capsys):
    folder = write_lgg_patient(tmp_path / "in", n_slices=3, size=32)
    out = tmp_path / "out"
    assert predict(capsys, folder, "--output", out)[0] == 0
    (out / PATIENT / f"{PATIENT}_3_mask.tif").unlink()  # as if Ctrl-C came between two slices
    status, _, err = predict(capsys, folder, "--output", out, "--skip-existing")
    assert status == 0 and "redoing" in err
    assert sorted(p.name for p in (out / PATIENT).iterdir()) == [f"{PATIENT}_{n}_mask.tif" for n in (1, 2, 3)]


@pytest.mark.hardening
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


@pytest.mark.hardening
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


@pytest.mark.hardening
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


# ------------------------------------------------------------------------------ two runs, one output; a closed pipe


@pytest.mark.hardening
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


@pytest.mark.hardening
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
