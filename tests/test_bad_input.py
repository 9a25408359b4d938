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


def test_modalities_on_another_grid_are_resampled(brats18_case, tmp_path):
    """A T1 cut to another field of view (and a T2 shifted 5 mm) is resampled onto the FLAIR grid by
    world coordinates, with one warning naming the file - not refused (issue 11)."""
    import warnings

    from napari_brainseg.plugin.readers import read_brats_folder

    case = copy_case(brats18_case, tmp_path / BRATS18_CASE)
    t1, t2 = case / f"{BRATS18_CASE}_t1.nii.gz", case / f"{BRATS18_CASE}_t2.nii.gz"
    loaded = nib.load(str(t1))
    image = nib.Nifti1Image(np.asarray(loaded.dataobj), loaded.affine, loaded.header)  # in memory: t1 is rewritten
    nib.save(image.slicer[:200], str(t1))  # same voxels, a smaller field of view
    shifted = nib.load(str(t2))
    moved = shifted.affine.copy()
    moved[0, 3] += 5.0  # the header says the volume lies 5 mm (5 voxels) further along x
    nib.save(nib.Nifti1Image(np.asarray(shifted.dataobj), moved, shifted.header), str(t2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layers = {kwargs["name"]: data for data, kwargs, _ in read_brats_folder(case)}
    notes = [str(w.message) for w in caught]
    assert any(t1.name in n and "resampled onto the flair grid" in n for n in notes), notes
    assert any(t2.name in n for n in notes)
    flair, t1_layer = layers[f"{BRATS18_CASE} flair"], layers[f"{BRATS18_CASE} t1"]
    assert t1_layer.shape == flair.shape
    original = np.asarray(image.dataobj).transpose(2, 1, 0)
    assert np.allclose(t1_layer[..., :200], original[..., :200])  # voxels inside the cut field of view
    assert (t1_layer[..., 200:] == 0).all()  # outside it: background
    t2_layer, t2_data = layers[f"{BRATS18_CASE} t2"], np.asarray(shifted.dataobj).transpose(2, 1, 0)
    sign = int(np.sign(shifted.affine[0, 0]))  # BraTS 2018 is LPS: x runs towards -i
    assert np.allclose(t2_layer[..., 10:-10], np.roll(t2_data, sign * 5, axis=2)[..., 10:-10])


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
