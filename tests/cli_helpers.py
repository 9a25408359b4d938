"""Running ``napari-brainseg predict`` in tests: in this process (``predict``) or as a child process
(``start_cli``), and reading its ``error:`` lines. The tiny cohort they run on is the ``cohort`` fixture
(conftest.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import nibabel as nib
import numpy as np

from napari_brainseg.cli import main

from .conftest import REPO

PATIENT = "TCGA_ZZ_0001_20000101"


def predict(capsys, *args):
    status = main(["predict", *map(str, args), "--device", "cpu"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return status, out, err


def error_lines(err):
    return [line for line in err.splitlines() if line.startswith("error:")]


def assert_complete(out, case_id):
    """A finished BraTS output: the NIfTI loads fully and the overlay is a whole PNG."""
    image = nib.load(str(out / f"{case_id}.nii.gz"))
    assert np.asarray(image.dataobj).shape == image.shape
    png = (out / f"{case_id}_overlay.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[-8:-4] == b"IEND"


def start_cli(*args, slow_dir=None, slow_s=0.4, stdout=subprocess.DEVNULL) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if slow_dir is not None:
        env.update(BRAINSEG_TEST_SLOW_DIR=str(slow_dir), BRAINSEG_TEST_SLOW_S=str(slow_s))
    command = [sys.executable, "-m", "tests.cli_child", "predict", *map(str, args), "--device", "cpu"]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_sigint_as_in_a_terminal)


def _sigint_as_in_a_terminal():
    """A shell starts background jobs (``cmd &``, nohup, some CI runners) with SIGINT ignored and children
    inherit that; the CLI rightly keeps an ignored signal ignored, so the child gets Ctrl-C's default, as
    a user's terminal gives it, whatever the test run's own disposition."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
