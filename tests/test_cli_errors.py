"""Bad input and bad places for ``napari-brainseg predict``: one ``error:`` line per bad case and a non-zero
exit, no traceback, the other cases of the cohort still written, and nothing written that was not asked
for - broken or missing cases, missing weights, an unexpected exception, output folders that are read-only,
cannot be created or are the case folder, ``--device cuda`` without a GPU, a full disk.

Tests marked ``hardening`` are rows of the troubleshooting table (``tests/hardening_catalogue.py``).
"""

from __future__ import annotations

import csv
import errno
import os
import shutil
import subprocess

import numpy as np
import pytest
import tifffile

from napari_brainseg.cli import main
from napari_brainseg.engine import registry
from napari_brainseg.engine import segment as engine_segment
from napari_brainseg.io import cases as io_cases
from napari_brainseg.io.lgg import read_lgg_patient

from .cli_helpers import PATIENT, error_lines, predict
from .helpers import copy_case
from .model_card import BRATS_VAL_CASE, LGG_VAL_PATIENT, assert_matches_card, lgg_dice
from .tiny_cases import brain_volume, write_brats_case, write_header_only_nifti, write_lgg_patient, write_nifti

# ------------------------------------------------------------------------------ broken and missing cases in a cohort


@pytest.fixture
def lgg_val(data_dir):
    return data_dir / "lgg" / "kaggle_3m" / LGG_VAL_PATIENT


def check_lgg_outputs(out, patient_folder):
    case = read_lgg_patient(patient_folder)
    written = sorted(p.name for p in (out / case.patient_id).iterdir())
    assert written == sorted(f"{case.patient_id}_{n}_mask.tif" for n in case.slice_numbers)
    masks = np.stack([tifffile.imread(out / case.patient_id / f"{case.patient_id}_{n}_mask.tif") for n in case.slice_numbers])
    assert masks.dtype == np.uint8 and masks.shape == case.image.shape[:3]
    assert set(np.unique(masks)) <= {0, 255}
    assert (out / f"{case.patient_id}_overlay.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return lgg_dice(masks, case.mask)


@pytest.mark.hardening
def test_cohort_with_a_broken_case(tmp_path, lgg_val, brats18_case, capsys):
    cohort = tmp_path / "cohort"
    shutil.copytree(lgg_val, cohort / "lgg" / LGG_VAL_PATIENT)
    broken = copy_case(brats18_case, cohort / "brats" / "Brats18_broken_1", skip=("seg",),
                       rename=lambda name: name.replace(BRATS_VAL_CASE, "Brats18_broken_1"))  # the new case id
    flair = broken / "Brats18_broken_1_flair.nii.gz"
    flair.write_bytes(flair.read_bytes()[:5000])
    out = tmp_path / "out"
    status = main(["predict", str(cohort), "--output", str(out)])
    err = capsys.readouterr().err
    assert status == 1
    error_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and error_lines[0].startswith("error: Brats18_broken_1: ")
    assert "truncated" in error_lines[0]
    assert "summary: 1 of 2 case(s) segmented" in err and "1 failed: Brats18_broken_1" in err
    assert_matches_card("lgg-unet2d", LGG_VAL_PATIENT, check_lgg_outputs(out, lgg_val))
    assert sorted(p.name for p in out.iterdir()) == [LGG_VAL_PATIENT, f"{LGG_VAL_PATIENT}_overlay.png", "volumes.csv"]
    assert not list(out.rglob(".*"))  # no temporary files left behind

    # without --overwrite the LGG patient is refused; with it, rewritten
    assert main(["predict", str(cohort / "lgg"), "--output", str(out), "--no-overlay"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["predict", str(cohort / "lgg"), "--output", str(out), "--overwrite", "--no-overlay"]) == 0


@pytest.mark.hardening
def test_missing_and_unrecognised_inputs(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    status = main(["predict", str(tmp_path / "nope"), str(tmp_path / "empty"), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 1
    assert "error: nope: " in err and "no such file or folder" in err
    assert "error: empty: " in err and "not a BraTS case folder, an LGG patient folder" in err


def _three_of_four(root):
    write_brats_case(root, "Brats18_Three_1", modalities=("flair", "t1", "t1ce"))
    return "Brats18_Three_1", "missing modality t2"


def _duplicate_modality(root):
    folder = write_brats_case(root, "Brats18_Dup_1")
    write_nifti(folder / "Brats18_Dup_1_flair.nii", brain_volume())
    return "Brats18_Dup_1", "two files for the flair modality"


def _huge_case(root):
    folder = root / "Brats18_Huge_1"
    folder.mkdir()
    for modality in ("flair", "t1", "t1ce", "t2"):
        write_header_only_nifti(folder / f"Brats18_Huge_1_{modality}.nii", (512, 512, 400))
    return "Brats18_Huge_1", "too large to segment"


def _rgba_slices(root):
    folder = write_lgg_patient(root, "TCGA_ZZ_0002_20000101", n_slices=2, size=32)
    tifffile.imwrite(folder / "TCGA_ZZ_0002_20000101_2.tif", np.zeros((32, 32, 4), np.uint8), photometric="rgb")
    return "TCGA_ZZ_0002_20000101", "found shape (32, 32, 4)"


def _zero_size_file(root):
    folder = write_brats_case(root, "Brats18_Zero_1")
    (folder / "Brats18_Zero_1_t1ce.nii.gz").write_bytes(b"")
    return "Brats18_Zero_1", "empty"


BAD_CASES = {
    "cli-three-of-four-modalities": _three_of_four,
    "cli-duplicate-modality": _duplicate_modality,
    "cli-huge-case": _huge_case,
    "cli-rgba-slices": _rgba_slices,
    "cli-zero-size-file": _zero_size_file,
}


@pytest.mark.hardening
@pytest.mark.parametrize("make", BAD_CASES.values(), ids=BAD_CASES.keys())
def test_bad_case_is_one_error_line(make, tmp_path, capsys):
    root = tmp_path / "cohort"
    root.mkdir()
    name, expected = make(root)
    out = tmp_path / "out"
    status, _, err = predict(capsys, root, "--output", out, "--no-overlay")
    lines = error_lines(err)
    assert status == 1 and len(lines) == 1 and lines[0].startswith(f"error: {name}: ") and expected in lines[0], err
    assert not list(out.iterdir())  # nothing written for the failed case


@pytest.mark.hardening
def test_unexpected_exception_is_one_line(tmp_path, capsys, monkeypatch):
    write_lgg_patient(tmp_path / "in", n_slices=2, size=32)

    def boom(*_args, **_kwargs):
        raise RuntimeError("something broke\nwith a second line")

    monkeypatch.setattr(engine_segment, "segment", boom)
    status, _, err = predict(capsys, tmp_path / "in", "--output", tmp_path / "out")
    assert status == 1 and error_lines(err) == [f"error: {PATIENT}: something broke"]


@pytest.mark.hardening
def test_weights_missing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path / "no-weights")
    write_lgg_patient(tmp_path / "in", n_slices=2, size=32)
    status, _, err = predict(capsys, tmp_path / "in", "--output", tmp_path / "out")
    assert status == 1 and "weights file" in err and "is missing" in error_lines(err)[0]
    assert not list((tmp_path / "out").iterdir())


@pytest.mark.hardening
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


# ------------------------------------------------------------------------------ output folders


@pytest.mark.hardening
def test_read_only_output_folder(tmp_path, capsys, monkeypatch):
    folder = write_lgg_patient(tmp_path / "in", n_slices=2, size=32)
    out = tmp_path / "out"
    (out / PATIENT).mkdir(parents=True)
    readonly = {str(out), str(out / PATIENT)}
    os.chmod(out / PATIENT, 0o555)
    os.chmod(out, 0o555)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m, **kw: False if str(p) in readonly else real_access(p, m, **kw))
    try:
        status, _, err = predict(capsys, folder, "--output", out)
    finally:
        os.chmod(out, 0o755)
        os.chmod(out / PATIENT, 0o755)
    assert status == 1 and "not writable" in error_lines(err)[0], err
    assert sorted(p.name for p in out.rglob("*")) == [PATIENT]


@pytest.mark.hardening
def test_output_folder_cannot_be_created(tmp_path, capsys):
    write_lgg_patient(tmp_path / "in", n_slices=2, size=32)
    (tmp_path / "a-file").write_text("x")
    status, _, err = predict(capsys, tmp_path / "in", "--output", tmp_path / "a-file" / "out")
    assert status == 2 and error_lines(err) and "cannot create the output folder" in err


@pytest.mark.hardening
def test_output_folder_is_the_case_folder(tmp_path, capsys):
    lgg = write_lgg_patient(tmp_path / "in", n_slices=2, size=32)
    masks = {p.name: p.read_bytes() for p in lgg.glob("*_mask.tif")}
    # LGG masks go to OUT/<patient>/: with OUT the patient's parent that is the case folder itself
    status, _, err = predict(capsys, lgg, "--output", lgg.parent, "--overwrite", "--no-overlay")
    assert status == 1 and "into the case folder" in error_lines(err)[0]
    assert {p.name: p.read_bytes() for p in lgg.glob("*_mask.tif")} == masks  # ground truth untouched
    brats = write_brats_case(tmp_path / "in2")
    before = sorted(p.name for p in brats.iterdir())
    status, _, err = predict(capsys, brats, "--output", brats)
    assert status == 1 and "into the case folder" in error_lines(err)[0]
    assert sorted(p.name for p in brats.iterdir()) == before


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


@pytest.mark.hardening
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
