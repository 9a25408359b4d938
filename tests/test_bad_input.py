"""Bad input gives one clear line naming the file and the problem, and never half a case."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import tifffile

from .conftest import BRATS18_CASE
from .helpers import copy_case, read_error, read_reason, without_paths


def test_truncated_nifti(brats18_case, tmp_path):
    source = (brats18_case / f"{BRATS18_CASE}_flair.nii.gz").read_bytes()
    path = tmp_path / "cut_flair.nii.gz"
    path.write_bytes(source[: len(source) // 2])
    assert "truncated" in read_reason(path)  # and the message names cut_flair.nii.gz


def test_truncated_file_inside_a_case_folder(brats18_case, tmp_path):
    case = copy_case(brats18_case, tmp_path / BRATS18_CASE)
    t2 = case / f"{BRATS18_CASE}_t2.nii.gz"
    t2.write_bytes(t2.read_bytes()[:5000])
    message = read_error(case)
    assert f"{BRATS18_CASE}_t2.nii.gz" in message and "truncated" in without_paths(message, case)


def test_modalities_of_different_shapes(brats18_case, tmp_path):
    case = copy_case(brats18_case, tmp_path / BRATS18_CASE)
    t1 = case / f"{BRATS18_CASE}_t1.nii.gz"
    image = nib.load(str(t1))
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj)[:200], image.affine, image.header), str(t1))
    message = read_error(case)
    assert t1.name in message and "shape" in without_paths(message, case)


def test_tif_that_is_not_an_image(tmp_path):
    path = tmp_path / "TCGA_XX_0000_20000101_1.tif"
    path.write_bytes(b"this is not a TIFF at all" * 10)
    assert "not a readable TIFF" in read_reason(path)


def test_tif_with_the_wrong_shape(tmp_path):
    path = tmp_path / "TCGA_XX_0000_20000101_1.tif"
    tifffile.imwrite(path, np.zeros((256, 256), np.uint8))
    assert "3-channel" in read_reason(path)


def test_empty_file_and_empty_folder(tmp_path):
    empty = tmp_path / "empty.nii.gz"
    empty.touch()
    assert "empty" in read_reason(empty)
    folder = tmp_path / "nothing_here"
    folder.mkdir()
    assert "empty" in read_reason(folder)


def test_only_a_segmentation(brats18_case, tmp_path):
    case = copy_case(brats18_case, tmp_path / BRATS18_CASE, skip=("flair", "_t1", "_t2"))
    assert "no image modality" in read_reason(case)
