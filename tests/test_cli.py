"""The batch CLI on real folders: exact output layout, dtype, shape and geometry; a broken case in a
cohort; overwrite refusal; the console script and the synthetic sample."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import tifffile

from napari_brainseg.cli import main
from napari_brainseg.io.lgg import read_lgg_patient

from .helpers import copy_case, nibabel_zyx
from .model_card import BRATS_VAL_CASE, LGG_VAL_PATIENT, assert_matches_card, brats_dice, lgg_dice


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


def test_missing_and_unrecognised_inputs(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    status = main(["predict", str(tmp_path / "nope"), str(tmp_path / "empty"), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 1
    assert "error: nope: " in err and "no such file or folder" in err
    assert "error: empty: " in err and "not a BraTS case folder, an LGG patient folder" in err


def test_console_script_sample(tmp_path):
    script = shutil.which("napari-brainseg", path=str(Path(sys.executable).parent))
    assert script, "the napari-brainseg console script is not installed"
    done = subprocess.run([script, "sample", "--output", str(tmp_path)], capture_output=True, text=True, check=True)
    brats, lgg = (tmp_path / "Synthetic_phantom_1", tmp_path / "SYNTHETIC_LGG_0001")
    assert done.stdout.split() == [str(brats), str(lgg)]
    assert (brats / "Synthetic_phantom_1_t1ce.nii.gz").is_file() and (lgg / "SYNTHETIC_LGG_0001_7.tif").is_file()
    bad = subprocess.run([script, "predict", "--output", str(tmp_path / "o")], capture_output=True, text=True)
    assert bad.returncode == 2 and "error:" in bad.stderr
