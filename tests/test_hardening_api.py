"""Hardening, Python API (segment / read_case / segment_case / write_result / write_labels): bad arrays
and cases give one BrainsegInputError line before any work; odd-but-valid inputs segment correctly.

Each test id is a row of the README's troubleshooting table (see ``tests/hardening_catalogue.py``).
"""

from __future__ import annotations

import os
import tracemalloc

import nibabel as nib
import numpy as np
import pytest

import napari_brainseg
from napari_brainseg.errors import BrainsegInputError
from napari_brainseg.io.writer import write_labels
from napari_brainseg.phantoms import make_brats_phantom

from .hardening_data import (
    OBLIQUE_AFFINE,
    no_temp_files,
    write_brats_case,
    write_header_only_nifti,
    write_lgg_patient,
)

HUGE = (400, 512, 512)  # z, y, x: 105 M voxels


def huge(dtype=np.uint8, shape=HUGE):
    """A 512 x 512 x 400 array that takes one element of memory (a zero-stride view)."""
    return np.broadcast_to(np.zeros(1, dtype), shape)


# ------------------------------------------------------------------------------ refused with one line

REFUSED = {
    "zhw-single-channel-into-2d-model": ((np.zeros((8, 64, 64), np.uint8), "lgg-unet2d"), "(1 channel)"),
    "lgg-1-channel": ((np.zeros((64, 64, 1), np.uint8), "lgg-unet2d"), "(1 channel)"),
    "lgg-2-channels": ((np.zeros((64, 64, 2), np.uint8), "lgg-unet2d"), "(2 channels)"),
    "lgg-4-channels-rgba": ((np.zeros((64, 64, 4), np.uint8), "lgg-unet2d"), "(4 channels)"),
    "2d-image-into-3d-model": ((np.zeros((64, 64), np.float32), "brats-unet3d"), "needs a (4, z, y, x) stack"),
    "3-channel-list-into-3d-model": (([np.zeros((8, 8, 8))] * 3, "brats-unet3d"), "needs 4 channels"),
    "non-numeric-array": ((np.array([["a", "b"]]), None), "numeric array"),
    "empty-array": ((np.zeros((0, 64, 64, 3), np.uint8), None), "empty"),
    "huge-volume": ((huge(np.float32, (4, *HUGE)), None), "too large to segment"),
    "huge-volume-as-channel-list": (([huge(np.int16)] * 4, "brats-unet3d"), "too large to segment"),
    "huge-volume-as-modality-dict": (({m: huge() for m in ("flair", "t1", "t1ce", "t2")}, None), "too large"),
    "huge-lgg-stack": ((huge(np.uint8, (2000, 512, 512, 3)), None), "too large to segment"),
}


@pytest.mark.parametrize("args, expected", REFUSED.values(), ids=REFUSED.keys())
def test_segment_refuses_with_one_line(args, expected):
    tracemalloc.start()
    try:
        with pytest.raises(BrainsegInputError) as info:
            napari_brainseg.segment(*args, device="cpu")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert expected in message and "\n" not in message, message
    assert peak < 64 * 2**20, f"allocated {peak / 2**20:.0f} MiB before refusing"


def test_max_voxels_is_configurable(monkeypatch):
    monkeypatch.setenv("BRAINSEG_MAX_VOXELS", "1000")
    with pytest.raises(BrainsegInputError, match="limit of 1,000"):
        napari_brainseg.segment(np.zeros((4, 10, 10, 11), np.float32), device="cpu")
    monkeypatch.setenv("BRAINSEG_MAX_VOXELS", "lots")
    with pytest.raises(BrainsegInputError, match="not a whole number"):
        napari_brainseg.segment(np.zeros((4, 10, 10, 11), np.float32), device="cpu")


def test_huge_case_on_disk_refused_from_its_header(tmp_path):
    folder = tmp_path / "Brats18_Huge_1"
    folder.mkdir()
    for modality in ("flair", "t1", "t1ce", "t2"):
        write_header_only_nifti(folder / f"Brats18_Huge_1_{modality}.nii", (512, 512, 400))
    with pytest.raises(BrainsegInputError, match="too large to segment: 512 x 512 x 400"):
        napari_brainseg.read_case(folder)


def test_three_of_four_modalities(tmp_path):
    folder = write_brats_case(tmp_path, modalities=("flair", "t1", "t1ce"))
    with pytest.raises(BrainsegInputError, match=r"missing modality t2 \(t2\)"):
        napari_brainseg.segment_case(folder)


def test_fractional_labels_refused_by_writer(tmp_path):
    with pytest.raises(BrainsegInputError, match="labels must be integers"):
        write_labels(tmp_path / "x.nii.gz", np.full((4, 4, 4), 0.5))
    assert not list(tmp_path.iterdir())


def test_negative_labels_written_as_signed_integers(tmp_path):
    labels = np.zeros((4, 5, 6), np.int32)
    labels[1, 2, 3] = -3
    out = write_labels(tmp_path / "x.nii.gz", labels)[0]
    image = nib.load(out)
    assert image.get_data_dtype() == np.int16
    np.testing.assert_array_equal(np.asarray(image.dataobj).transpose(2, 1, 0), labels)


def test_read_only_output_folder(tmp_path, monkeypatch):
    folder = write_lgg_patient(tmp_path / "in", n_slices=2, size=32)
    result, case = napari_brainseg.segment_case(folder, device="cpu")
    out = tmp_path / "out"
    (out / case.patient_id).mkdir(parents=True)
    os.chmod(out / case.patient_id, 0o555)
    real_access = os.access
    # root ignores permission bits, so also make the folder look read-only to the writer's check
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if str(p) == str(out / case.patient_id) else real_access(p, mode, **kw))
    try:
        with pytest.raises(BrainsegInputError, match="not writable") as info:
            napari_brainseg.write_result(result, case, out)
        assert "\n" not in str(info.value)
        assert not list((out / case.patient_id).iterdir())
    finally:
        os.chmod(out / case.patient_id, 0o755)


# ------------------------------------------------------------------------------ odd but valid


def test_3d_stack_into_2d_model_is_slice_wise():
    stack = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3)).astype(np.uint8)
    result = napari_brainseg.segment(stack, device="cpu")
    channels = napari_brainseg.segment([stack[..., 0], stack[..., 1], stack[..., 2]], device="cpu")
    assert result.model == "lgg-unet2d" and result.labels.shape == (3, 32, 32)
    np.testing.assert_array_equal(result.labels, channels.labels)


def test_tiny_volume_smaller_than_the_patch():
    image = np.random.default_rng(0).random((4, 5, 6, 7)).astype(np.float32) + 1
    result = napari_brainseg.segment(image, device="cpu")
    assert result.labels.shape == (5, 6, 7) and result.labels.dtype == np.uint8


def test_tiny_slice():
    result = napari_brainseg.segment(np.full((5, 7, 3), 100, np.uint8), device="cpu")
    assert result.labels.shape == (5, 7)


def test_all_zero_image_gives_empty_labels_and_says_so():
    result = napari_brainseg.segment(np.zeros((4, 12, 14, 16), np.float32), device="cpu")
    assert not result.labels.any() and any("constant" in m for m in result.messages)


def test_inf_voxels_in_a_volume_are_background():
    """NaN/Inf voxels inside the brain count as background: the labels are those of the same volume with
    them set to 0, and the tumour is still found (one NaN in a channel's mean would blank the channel)."""
    phantom = make_brats_phantom()
    image = np.stack([phantom.images[m] for m in ("flair", "t1", "t1ce", "t2")]).astype(np.float32)
    zeroed = image.copy()
    z, y, x = (n // 4 for n in image.shape[1:])  # in the brain, away from the tumour
    image[:, z, y, x : x + 3] = (np.inf, -np.inf, np.nan)
    zeroed[:, z, y, x : x + 3] = 0
    result = napari_brainseg.segment(image, device="cpu")
    assert any("NaN/Inf" in m for m in result.messages)
    assert result.labels.any()
    np.testing.assert_array_equal(result.labels, napari_brainseg.segment(zeroed, device="cpu").labels)


def test_anisotropic_oblique_case_segments_and_writes_its_geometry(tmp_path):
    folder = write_brats_case(tmp_path / "in", affine=OBLIQUE_AFFINE)
    result, case = napari_brainseg.segment_case(folder, device="cpu")
    assert result.settings["spacing_mm"] == pytest.approx([3.0, 1.1, 0.9])
    out = napari_brainseg.write_result(result, case, tmp_path)[0]
    source, written = nib.load(str(folder / "Brats18_Tiny_1_flair.nii.gz")), nib.load(out)
    assert np.array_equal(written.affine, source.affine) and written.shape == source.shape
    assert written.header.get_zooms() == source.header.get_zooms()
    assert no_temp_files(tmp_path)


def test_paths_with_spaces_and_non_ascii(tmp_path):
    folder = write_lgg_patient(tmp_path / "my scans" / "Ünïcødé 病例", n_slices=2, size=32)
    result, case = napari_brainseg.segment_case(folder, device="cpu")
    out = tmp_path / "résultats et masques"
    out.mkdir()
    assert len(napari_brainseg.write_result(result, case, out)) == 2

