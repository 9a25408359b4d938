"""Hardening, CLI (``napari-brainseg predict``): one ``error:`` line per bad case and a non-zero exit, no
traceback, nothing written that was not asked for; Ctrl-C mid-cohort leaves only complete files.

Each test id is a row of the README's troubleshooting table (see ``tests/hardening_catalogue.py``).
"""

from __future__ import annotations

import os
import shutil

import nibabel as nib
import numpy as np
import pytest
import tifffile

from napari_brainseg.cli import main
from napari_brainseg.engine import registry
from napari_brainseg.engine import segment as engine_segment
from napari_brainseg.io import writer

from .hardening_data import (
    brain_volume,
    no_temp_files,
    write_brats_case,
    write_header_only_nifti,
    write_lgg_patient,
    write_nifti,
)

PATIENT = "TCGA_ZZ_0001_20000101"


def predict(capsys, *args):
    status = main(["predict", *map(str, args), "--device", "cpu"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return status, out, err


def error_lines(err):
    return [line for line in err.splitlines() if line.startswith("error:")]


@pytest.fixture
def cohort(tmp_path):
    """Three tiny cases: two BraTS, one LGG."""
    root = tmp_path / "cohort"
    write_brats_case(root, "Brats18_Tiny_1")
    write_brats_case(root, "Brats18_Tiny_2")
    write_lgg_patient(root, PATIENT, n_slices=3, size=32)
    return root


def assert_complete(out, case_id):
    """A finished BraTS output: the NIfTI loads fully and the overlay is a whole PNG."""
    image = nib.load(str(out / f"{case_id}.nii.gz"))
    assert np.asarray(image.dataobj).shape == image.shape
    png = (out / f"{case_id}_overlay.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[-8:-4] == b"IEND"


# ------------------------------------------------------------------------------ bad cases in a cohort


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


def test_unexpected_exception_is_one_line(tmp_path, capsys, monkeypatch):
    write_lgg_patient(tmp_path / "in", n_slices=2, size=32)

    def boom(*_args, **_kwargs):
        raise RuntimeError("something broke\nwith a second line")

    monkeypatch.setattr(engine_segment, "segment", boom)
    status, _, err = predict(capsys, tmp_path / "in", "--output", tmp_path / "out")
    assert status == 1 and error_lines(err) == [f"error: {PATIENT}: something broke"]


def test_weights_missing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path / "no-weights")
    write_lgg_patient(tmp_path / "in", n_slices=2, size=32)
    status, _, err = predict(capsys, tmp_path / "in", "--output", tmp_path / "out")
    assert status == 1 and "weights file" in err and "is missing" in error_lines(err)[0]
    assert not list((tmp_path / "out").iterdir())


# ------------------------------------------------------------------------------ output folders


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


def test_output_folder_cannot_be_created(tmp_path, capsys):
    write_lgg_patient(tmp_path / "in", n_slices=2, size=32)
    (tmp_path / "a-file").write_text("x")
    status, _, err = predict(capsys, tmp_path / "in", "--output", tmp_path / "a-file" / "out")
    assert status == 2 and error_lines(err) and "cannot create the output folder" in err


def test_output_folder_inside_input_folder(cohort, capsys):
    # case "Subj_t2" is written as results/Subj_t2.nii.gz - a BraTS-like name (case "Subj", modality t2)
    write_brats_case(cohort, "Subj_t2")
    out = cohort / "results"
    status, stdout, err = predict(capsys, cohort, "--output", out, "--no-overlay")
    assert status == 0 and "summary: 4 of 4" in err
    listing = sorted(p.name for p in out.iterdir())
    assert "Subj_t2.nii.gz" in listing
    # a rerun finds the same four cases, not its own outputs, and skips them as asked
    status, stdout, err = predict(capsys, cohort, "--output", out, "--skip-existing", "--no-overlay")
    assert status == 0 and err.count("skipped:") == 4 and "summary: 0 of 4" in err and "4 skipped" in err
    assert not error_lines(err)
    assert sorted(p.name for p in out.iterdir()) == listing


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


def test_paths_with_spaces_and_non_ascii(tmp_path, capsys):
    root = tmp_path / "my scans" / "Ünïcødé 病例"
    write_brats_case(root, "Brats18_Tiny_1")
    out = tmp_path / "résultats 結果"
    status, stdout, err = predict(capsys, root, "--output", out)
    assert status == 0 and stdout.split("\n")[0] == str(out / "Brats18_Tiny_1.nii.gz")
    assert_complete(out, "Brats18_Tiny_1")


# ------------------------------------------------------------------------------ Ctrl-C


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


def test_interrupted_while_writing_leaves_no_file(tmp_path, capsys, monkeypatch):
    write_brats_case(tmp_path / "in", "Brats18_Tiny_1")
    out = tmp_path / "out"
    def publish_file(tmp, target, **_kwargs):
        assert tmp.stat().st_size > 0  # the temporary file is complete ...
        raise KeyboardInterrupt  # ... but Ctrl-C arrives before the rename

    monkeypatch.setattr(writer, "publish_file", publish_file)
    status, _, err = predict(capsys, tmp_path / "in", "--output", out)
    assert status == 130 and not list(out.iterdir())  # neither the target nor a temporary file


def test_partial_lgg_outputs_are_redone_with_skip_existing(tmp_path, capsys):
    folder = write_lgg_patient(tmp_path / "in", n_slices=3, size=32)
    out = tmp_path / "out"
    assert predict(capsys, folder, "--output", out)[0] == 0
    (out / PATIENT / f"{PATIENT}_3_mask.tif").unlink()  # as if Ctrl-C came between two slices
    status, _, err = predict(capsys, folder, "--output", out, "--skip-existing")
    assert status == 0 and "redoing" in err
    assert sorted(p.name for p in (out / PATIENT).iterdir()) == [f"{PATIENT}_{n}_mask.tif" for n in (1, 2, 3)]
