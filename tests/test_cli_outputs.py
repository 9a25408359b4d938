"""What ``napari-brainseg predict`` writes on good input: the exact output layout, dtype, shape and
geometry on real cases, the console script and the synthetic sample, ordinary file modes, reruns into the
same folder, and the odd-but-valid inputs it must still write (hidden files beside the data, a second
segmentation file, paths with spaces and non-ASCII characters, long case ids).

Tests marked ``hardening`` are rows of the troubleshooting table (``tests/hardening_catalogue.py``).
"""

from __future__ import annotations

import csv
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_brainseg.cli import main
from napari_brainseg.engine import segment as engine_segment
from napari_brainseg.io import cases as io_cases
from napari_brainseg.io.brats import read_brats_case
from napari_brainseg.io.writer import write_labels
from napari_brainseg.plugin.writers import napari_write_labels_lgg, napari_write_labels_nifti

from .cli_helpers import PATIENT, assert_complete, error_lines, predict
from .helpers import nibabel_zyx
from .model_card import BRATS_VAL_CASE, assert_matches_card, brats_dice
from .tiny_cases import write_brats_case, write_lgg_patient, write_nifti

# ------------------------------------------------------------------------------ real cases


def test_brats_case_output_is_exact(tmp_path, brats18_case, capsys):
    out = tmp_path / "out"
    assert main(["predict", str(brats18_case), "--output", str(out), "--device", "cpu"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"{BRATS_VAL_CASE}.nii.gz", f"{BRATS_VAL_CASE}_overlay.png", "volumes.csv"]
    source = nib.load(str(brats18_case / f"{BRATS_VAL_CASE}_flair.nii.gz"))
    result = nib.load(str(out / f"{BRATS_VAL_CASE}.nii.gz"))
    assert result.get_data_dtype() == np.uint8 and result.shape == source.shape
    np.testing.assert_allclose(result.affine, source.affine)
    labels = np.asarray(result.dataobj)
    assert set(np.unique(labels)) <= {0, 1, 2, 4}  # the case's own (2018) convention
    truth = nibabel_zyx(brats18_case / f"{BRATS_VAL_CASE}_seg.nii.gz")
    pred = labels.transpose(2, 1, 0)
    dice = brats_dice(pred, truth)
    assert_matches_card("brats-unet3d", BRATS_VAL_CASE, dice)  # TC, WT and ET
    wt = dice["dice_WT"]
    err = capsys.readouterr().err
    assert f"{BRATS_VAL_CASE} [" in err and "summary: 1 of 1 case(s) segmented" in err
    assert f"volumes (and Dice where a truth was given) in {out / 'volumes.csv'}" in err  # says where it went
    table = {row["class"]: row for row in csv.DictReader((out / "volumes.csv").open())}
    assert float(table["WT (whole tumour)"]["dice"]) == pytest.approx(wt, abs=1e-4)  # the case's own seg
    assert table["enhancing tumour"]["case"] == BRATS_VAL_CASE and float(table["peritumoural edema"]["volume_ml"]) > 0

    # issue 17 (7): the same case as one Decathlon-style 4D file, with --truth: the same labels
    volumes = [nib.load(str(brats18_case / f"{BRATS_VAL_CASE}_{m}.nii.gz")) for m in ("flair", "t1", "t1ce", "t2")]
    stacked = np.stack([np.asarray(v.dataobj) for v in volumes], axis=-1)
    msd = tmp_path / "BRATS_900.nii.gz"
    nib.save(nib.Nifti1Image(stacked, volumes[0].affine, volumes[0].header), str(msd))
    seg = brats18_case / f"{BRATS_VAL_CASE}_seg.nii.gz"
    assert main(["predict", str(msd), "--output", str(out), "--truth", str(seg), "--no-overlay"]) == 0
    np.testing.assert_array_equal(np.asarray(nib.load(str(out / "BRATS_900.nii.gz")).dataobj), labels)
    rows = list(csv.DictReader((out / "volumes.csv").open()))
    assert {row["case"] for row in rows} == {BRATS_VAL_CASE, "BRATS_900"}  # the first case's rows are kept
    msd_wt = next(r for r in rows if r["case"] == "BRATS_900" and r["class"] == "WT (whole tumour)")
    assert float(msd_wt["dice"]) == pytest.approx(wt, abs=1e-4)
    assert main(["predict", str(msd), "--output", str(out), "--skip-existing", "--no-overlay"]) == 0
    err = capsys.readouterr().err
    assert "skipped: BRATS_900" in err and "summary: 0 of 1 case(s) segmented" in err and "1 skipped" in err

    # a second run refuses to overwrite, before any work, and leaves the file alone
    before = (out / f"{BRATS_VAL_CASE}.nii.gz").stat().st_mtime_ns
    assert main(["predict", str(brats18_case), "--output", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"error: {BRATS_VAL_CASE}: " in err and "already exists; pass --overwrite" in err
    assert (out / f"{BRATS_VAL_CASE}.nii.gz").stat().st_mtime_ns == before


def test_console_script_sample(tmp_path):
    script = shutil.which("napari-brainseg", path=str(Path(sys.executable).parent))
    assert script, "the napari-brainseg console script is not installed"
    done = subprocess.run([script, "sample", "--output", str(tmp_path)], capture_output=True, text=True, check=True)
    brats, lgg = (tmp_path / "Synthetic_phantom_1", tmp_path / "SYNTHETIC_LGG_0001")
    assert done.stdout.split() == [str(brats), str(lgg)]
    assert (brats / "Synthetic_phantom_1_t1ce.nii.gz").is_file() and (lgg / "SYNTHETIC_LGG_0001_7.tif").is_file()
    bad = subprocess.run([script, "predict", "--output", str(tmp_path / "o")], capture_output=True, text=True)
    assert bad.returncode == 2 and "error:" in bad.stderr


# ------------------------------------------------------------------------------ file modes and reruns


@pytest.mark.hardening
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


@pytest.mark.hardening
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


# ------------------------------------------------------------------------------ odd but valid inputs


@pytest.mark.hardening
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


@pytest.mark.hardening
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


@pytest.mark.hardening
def test_paths_with_spaces_and_non_ascii(tmp_path, capsys):
    root = tmp_path / "my scans" / "Ünïcødé 病例"
    write_brats_case(root, "Brats18_Tiny_1")
    out = tmp_path / "résultats 結果"
    status, stdout, err = predict(capsys, root, "--output", out)
    assert status == 0 and stdout.split("\n")[0] == str(out / "Brats18_Tiny_1.nii.gz")
    assert_complete(out, "Brats18_Tiny_1")


@pytest.mark.hardening
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
