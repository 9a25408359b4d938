"""``napari-brainseg compare``: two segmentations of one patient, phantoms with known diameters, real
ground truth, and bad input as one ``error:`` line."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from napari_brainseg.cli import main
from napari_brainseg.io.nifti import napari_to_nifti
from napari_brainseg.measure.change import category

from .test_measure import ellipsoid

SPACING = (2.0, 1.0, 1.0)  # (z, y, x) mm


def write_labels(path, labels, spacing=SPACING):
    affine = np.diag([spacing[2], spacing[1], spacing[0], 1.0])
    nib.save(nib.Nifti1Image(napari_to_nifti(labels), affine), str(path))
    return path


def brats_lesion(long_mm, short_mm):
    """BraTS 2018 labels: an enhancing ellipsoid (4) in edema (2); the in-plane axes are known."""
    shape = (50, 128, 128)
    labels = np.zeros(shape, np.uint8)
    labels[ellipsoid(shape, SPACING, (50, 64, 64), (20, long_mm / 2 + 8, short_mm / 2 + 8))] = 2
    labels[ellipsoid(shape, SPACING, (50, 64, 64), (12, long_mm / 2, short_mm / 2), 20)] = 4
    return labels


@pytest.mark.parametrize("after, expected", [((40, 30), "stable"), ((50, 36), "progression"), ((26, 20), "partial-response")])
def test_compare_phantoms_falls_into_the_rano_band(tmp_path, capsys, after, expected):
    a = write_labels(tmp_path / "base.nii.gz", brats_lesion(40, 30))
    b = write_labels(tmp_path / "follow.nii.gz", brats_lesion(*after))
    assert main(["compare", str(a), str(b), "--json", str(tmp_path / "c.json")]) == 0
    out = capsys.readouterr().out
    result = json.loads((tmp_path / "c.json").read_text())
    assert result["target"] == "enhancing tumour" and expected in result["product_category"]
    assert "not a clinical assessment" in out and expected in out
    base = result["baseline"]["largest"]
    assert base["longest_mm"] == pytest.approx(40, abs=np.sqrt(2)) and base["perpendicular_mm"] == pytest.approx(30, abs=np.sqrt(2))
    true_change = (after[0] * after[1]) / (40 * 30) - 1  # within a voxel on each diameter
    assert abs(result["product_change_pct"] / 100 - true_change) < 0.12
    assert result["lesion_count_change"] == 0


def test_rano_bands():
    assert "progression" in category(100, 125, 0.25, -0.5, "x")
    assert "stable" in category(100, 124, 0.25, -0.5, "x")
    assert "partial-response" in category(100, 50, 0.25, -0.5, "x")
    assert "complete" in category(100, 0, 0.25, -0.5, "x")
    assert "not evaluable" in category(0, 0, 0.25, -0.5, "x") and "new" in category(0, 10, 0.25, -0.5, "x")


def test_compare_real_case_folder_with_its_own_seg_file(brats18_case, capsys):
    seg = next(brats18_case.glob("*_seg.nii*"))
    assert main(["compare", str(brats18_case), str(seg)]) == 0
    out = capsys.readouterr().out
    assert "(+0.0 %): within the stable range" in out and "lesions:" in out


def test_compare_lgg_patient_folders(lgg_patient, capsys):
    assert main(["compare", str(lgg_patient), str(lgg_patient)]) == 0
    captured = capsys.readouterr()
    assert "FLAIR abnormality" in captured.out and "1 mm assumed" in captured.err


def test_compare_bad_input_is_one_error_line(tmp_path, capsys):
    good = write_labels(tmp_path / "a.nii.gz", brats_lesion(40, 30))
    assert main(["compare", str(good), str(tmp_path / "missing.nii.gz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "no such file" in err and err.count("\n") == 1
    odd = np.zeros((10, 20, 20), np.uint8)
    odd[2:5, 5:9, 5:9] = 7
    bad = write_labels(tmp_path / "odd.nii.gz", odd)
    assert main(["compare", str(good), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "--convention" in err and err.count("\n") == 1
    lgg = write_labels(tmp_path / "lgg.nii.gz", (brats_lesion(40, 30) > 0).astype(np.uint8))
    assert main(["compare", str(good), str(lgg)]) == 2
    assert "compare like with like" in capsys.readouterr().err
