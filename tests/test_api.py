"""The scripted Python API (segment / read_case / segment_case / write_result / write_labels): input checks,
model choice, determinism, conventions, OOM fallback, writing; and its hardening: bad arrays and cases give
one BrainsegInputError line before any work, odd-but-valid inputs segment correctly.

Tests marked ``hardening`` are rows of the troubleshooting table (``tests/hardening_catalogue.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc

import nibabel as nib
import numpy as np
import pytest
import tifffile
import torch

import napari_brainseg
from napari_brainseg.conventions import brats_regions_to_labels, convert_brats_labels
from napari_brainseg.engine import segment as engine_segment
from napari_brainseg.engine.preprocess import postprocess
from napari_brainseg.engine.registry import get_spec
from napari_brainseg.errors import BrainsegInputError
from napari_brainseg.io.writer import write_labels
from napari_brainseg.phantoms import make_brats_phantom

from .model_card import LGG_VAL_PATIENT, assert_matches_card, lgg_dice
from .tiny_cases import (
    OBLIQUE_AFFINE,
    no_temp_files,
    write_brats_case,
    write_header_only_nifti,
    write_lgg_patient,
)


@pytest.fixture(scope="module")
def lgg_case(data_dir):
    return napari_brainseg.read_case(data_dir / "lgg" / "kaggle_3m" / LGG_VAL_PATIENT)


@pytest.fixture(scope="module")
def brats_crop(brats18_case):
    """A brain-centred 64 x 96 x 96 block of a real case: one sliding window, so quick on a CPU."""
    case = napari_brainseg.read_case(brats18_case)
    return case.stacked()[:, 50:114, 70:166, 70:166].copy()


def test_import_is_light():
    code = "import sys, napari_brainseg; assert 'torch' not in sys.modules and 'monai' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_lgg_deterministic_and_on_input_grid(lgg_case):
    stack = lgg_case.image[6:10]
    first = napari_brainseg.segment(stack, device="cpu")
    second = napari_brainseg.segment(stack.copy(), device="cpu")
    assert first.model == "lgg-unet2d" and first.device == "cpu"
    assert first.labels.dtype == np.uint8 and first.labels.shape == stack.shape[:3]
    assert set(np.unique(first.labels)) <= {0, 1}
    np.testing.assert_array_equal(first.labels, second.labels)  # bit-identical on CPU
    spec = get_spec("lgg-unet2d")  # the cross-validated defaults
    assert first.settings["tta"] is spec.tta and first.settings["threshold"] == {"tumour": spec.threshold}
    assert first.settings["networks"] == spec.members


def test_lgg_single_slice_and_channel_triple(lgg_case):
    plane = lgg_case.image[8]
    as_slice = napari_brainseg.segment(plane, spacing=(0.5, 0.5))
    assert as_slice.labels.shape == plane.shape[:2]
    triple = napari_brainseg.segment([plane[..., 0], plane[..., 1], plane[..., 2]])
    np.testing.assert_array_equal(as_slice.labels, triple.labels)
    # volumes from spacing: pixels * 0.25 mm^2 * 1 mm slab / 1000
    expected = as_slice.labels.sum() * 0.25 / 1000
    assert as_slice.volumes_ml["FLAIR abnormality (tumour)"] == pytest.approx(expected)
    assert not any("spacing" in m for m in as_slice.messages)
    assert any("spacing" in m for m in triple.messages)


def test_brats_deterministic_conventions_and_probabilities(brats_crop):
    untouched = brats_crop.copy()
    first = napari_brainseg.segment(brats_crop, device="cpu", spacing=(1, 1, 1), return_probabilities=True)
    np.testing.assert_array_equal(brats_crop, untouched)  # the caller's array is never modified
    assert first.model == "brats-unet3d" and first.label_convention == "brats2018"
    assert first.labels.shape == brats_crop.shape[1:] and first.labels.dtype == np.uint8
    assert set(np.unique(first.labels)) <= {0, 1, 2, 4}
    assert first.probabilities.shape == (3, *brats_crop.shape[1:])
    modalities = dict(zip(("flair", "t1", "t1ce", "t2"), brats_crop))
    second = napari_brainseg.segment(modalities, device="cpu", convention="2023")
    assert second.label_convention == "brats2023" and set(np.unique(second.labels)) <= {0, 1, 2, 3}
    # same input, same model, bit-identical labels (only the ET value differs between conventions)
    np.testing.assert_array_equal(convert_brats_labels(second.labels, "brats2023", "brats2018"), first.labels)
    assert first.volumes_ml["enhancing tumour"] == pytest.approx((first.labels == 4).sum() / 1000)
    # the labels are the registry's post-processing of the returned probabilities (threshold, cleanup,
    # the core's hole filling), and the result says which
    spec = get_spec("brats-unet3d")
    regions = postprocess(first.probabilities, spec)
    np.testing.assert_array_equal(brats_regions_to_labels(regions, "brats2018"), first.labels)
    assert first.settings["core_hole_fill"] == spec.core_hole_fill
    assert first.settings["threshold"] == dict(zip(spec.out_channels, spec.thresholds))


@pytest.mark.parametrize(
    "image, model, message",
    [
        (np.zeros((5, 8, 8, 8), np.float32), None, "cannot tell which model"),
        (np.zeros((5, 8, 8, 8), np.float32), "brats-unet3d", "needs 4 channels"),
        (np.zeros((4, 32, 32), np.float32), "brats-unet3d", "needs 3D volumes"),
        (np.zeros((8, 32, 32, 4), np.uint8), "lgg-unet2d", "needs 3-channel slices"),
        ({"flair": np.zeros((8, 8, 8)), "t1": np.zeros((8, 8, 8)), "t1ce": np.zeros((8, 8, 9)), "t2": np.zeros((8, 8, 8))},
         None, "different shapes"),
        ({"flair": np.zeros((8, 8, 8))}, "brats-unet3d", "missing t1, t1ce, t2"),
        (np.zeros((16, 16, 3)), "no-such-model", "unknown model"),
    ],
)
def test_bad_inputs_give_one_line_errors(image, model, message):
    with pytest.raises(BrainsegInputError, match=message) as info:
        napari_brainseg.segment(image, model)
    assert "\n" not in str(info.value)


def test_nan_voxels_are_background(lgg_case):
    plane = lgg_case.image[8].astype(np.float32)
    plane[:10, :10] = np.nan
    result = napari_brainseg.segment(plane)
    assert not result.labels[:10, :10].any()
    assert any("NaN" in m for m in result.messages)
    zeroed = np.nan_to_num(plane, nan=0.0)  # the same plane with the NaN corner set to 0
    assert result.labels.any()  # the tumour on this slice is still found
    np.testing.assert_array_equal(result.labels, napari_brainseg.segment(zeroed).labels)


def test_should_stop_cancels_without_result(lgg_case):
    with pytest.raises(InterruptedError):
        napari_brainseg.segment(lgg_case.image[:4], should_stop=lambda: True)


def test_cuda_oom_retries_smaller_then_cpu(monkeypatch, lgg_case):
    calls = []
    real_forward = engine_segment._forward

    def forward(spec, x, device, batch, *rest):
        calls.append((device.type, batch))
        if device.type == "cuda":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return real_forward(spec, x, device, batch, *rest)

    monkeypatch.setattr(engine_segment, "_forward", forward)
    monkeypatch.setattr(engine_segment, "resolve_device", lambda _: torch.device("cuda"))
    result = napari_brainseg.segment(lgg_case.image[6:8], device="cuda")
    assert calls == [("cuda", 16), ("cuda", 1), ("cpu", 16)]
    assert result.device == "cpu"
    assert [m.split(";")[1].strip() for m in result.messages if "out of memory" in m] == [
        "retried with batch size 1",
        "retried on the CPU",
    ]



def test_non_finite_probabilities_are_recomputed_in_fp32(monkeypatch, lgg_case):
    """An overflowing reduced-precision pass (NaN probabilities) must not become empty labels."""
    calls = []
    real_forward = engine_segment._forward

    def forward(*args, amp=True, **kwargs):
        calls.append(amp)
        prob = real_forward(*args, amp=amp, **kwargs)
        return np.full_like(prob, np.nan) if amp else prob  # as fp16 overflow to inf then NaN leaves it

    expected = napari_brainseg.segment(lgg_case.image[6:8], device="cpu", fast=True)
    monkeypatch.setattr(engine_segment, "_forward", forward)
    result = napari_brainseg.segment(lgg_case.image[6:8], device="cpu", fast=True)
    assert calls == [True, False]
    assert any("non-finite probabilities; recomputed in fp32" in m for m in result.messages)
    assert result.labels.any()
    assert (result.labels == expected.labels).mean() > 0.999  # fp32 against bf16 autocast: a few edge pixels at most


def test_networks_run_in_bf16_or_fp32_never_fp16(monkeypatch):
    """bf16 keeps fp32's range; brats-unet3d's decoder overflows fp16 on real cases (precision_check.json)."""
    from napari_brainseg.engine import device as engine_device

    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert engine_device.autocast_dtype(cuda) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)  # pre-Ampere GPU
    assert engine_device.autocast_dtype(cuda) is None
    monkeypatch.setattr(engine_device, "cpu_supports_bf16", lambda: False)
    assert engine_device.autocast_dtype(torch.device("cpu")) is None
    with engine_device.autocast(torch.device("cpu")):
        assert not torch.is_autocast_enabled("cpu")
    monkeypatch.setattr(engine_device, "cpu_supports_bf16", lambda: True)
    with engine_device.autocast(torch.device("cpu")):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16

def test_segment_case_and_write_result(tmp_path, lgg_case):
    result, case = napari_brainseg.segment_case(lgg_case.folder, device="cpu")
    assert case.patient_id == LGG_VAL_PATIENT and result.labels.shape == case.image.shape[:3]
    assert_matches_card("lgg-unet2d", LGG_VAL_PATIENT, lgg_dice(result.labels, case.mask))
    written = napari_brainseg.write_result(result, case, tmp_path)
    assert len(written) == len(case.slice_numbers)
    mask = tifffile.imread(tmp_path / LGG_VAL_PATIENT / f"{LGG_VAL_PATIENT}_{case.slice_numbers[-1]}_mask.tif")
    assert mask.dtype == np.uint8 and mask.shape == (256, 256) and set(np.unique(mask)) <= {0, 255}
    with pytest.raises(BrainsegInputError, match="already exists"):
        napari_brainseg.write_result(result, case, tmp_path)
    napari_brainseg.write_result(result, case, tmp_path, overwrite=True)
    assert not [p for p in (tmp_path / LGG_VAL_PATIENT).iterdir() if p.name.startswith(".")]  # no temp files left
    with pytest.raises(BrainsegInputError, match="does not fit"):
        napari_brainseg.segment_case(case, "brats-unet3d")


def test_tta_is_the_mean_over_mirrored_inputs(lgg_case):
    stack = lgg_case.image[7:9]  # (Z, H, W, 3), tumour on both slices
    plain = napari_brainseg.segment(stack, device="cpu", tta=False, return_probabilities=True)
    tta = napari_brainseg.segment(stack, device="cpu", tta=True, return_probabilities=True)
    assert tta.settings["tta"] is True and plain.settings["tta"] is False
    # flip TTA = the mean of the network's answers on the image and on each mirror image, mirrored back;
    # computed here from plain runs on mirrored input (bit-identical on the CPU)
    answers = [plain.probabilities]
    for axis in (1, 2):  # H, W of the stack; (K, Z, H, W) probabilities have them one axis later
        mirrored = napari_brainseg.segment(np.flip(stack, axis), device="cpu", tta=False, return_probabilities=True)
        answers.append(np.flip(mirrored.probabilities, axis + 1))
    np.testing.assert_allclose(tta.probabilities, np.mean(answers, axis=0), atol=1e-5)
    # the mirrored answers do differ (up to 0.42 per voxel on these slices), so flips that do nothing would fail
    assert np.abs(tta.probabilities - plain.probabilities).max() > 0.05


def test_phantoms_are_cases_routed_to_their_model(tmp_path):
    """The package's phantoms satisfy the Case protocol: each goes to its own model, through segment_case
    and segment alike, and write_result writes them like read cases (no patient data needed)."""
    from napari_brainseg.engine.registry import MODELS
    from napari_brainseg.io.cases import Case, read_case
    from napari_brainseg.phantoms import make_brats_phantom, make_lgg_phantom, write_brats_phantom

    brats, lgg = make_brats_phantom(), make_lgg_phantom(n_slices=4, size=64)
    assert isinstance(brats, Case) and isinstance(lgg, Case) and not isinstance(brats.seg, Case)
    result, case = napari_brainseg.segment_case(brats, device="cpu")
    assert case is brats and result.model == "brats-unet3d" and result.label_convention == "brats2018"
    assert result.labels.shape == brats.shape and result.volumes_ml["enhancing tumour"] > 0
    # the same labels as the phantom written to disk and read back as a BraTS case folder
    from_disk, _ = napari_brainseg.segment_case(read_case(write_brats_phantom(tmp_path / "in", brats)), device="cpu")
    np.testing.assert_array_equal(result.labels, from_disk.labels)
    [written] = napari_brainseg.write_result(result, brats, tmp_path / "out")
    assert written.endswith(f"{brats.case_id}.nii.gz")
    lgg_result = napari_brainseg.segment(lgg, device="cpu")  # used to raise a raw TypeError
    assert lgg_result.model == "lgg-unet2d" and lgg_result.labels.shape == lgg.mask.shape
    # the registry names each model's case kind with the same enum member the cases carry
    assert MODELS[result.model].case_kind is brats.kind and MODELS[lgg_result.model].case_kind is lgg.kind
    assert len(napari_brainseg.write_result(lgg_result, lgg, tmp_path / "out")) == 4
    with pytest.raises(BrainsegInputError, match="does not fit a BraTS case"):
        napari_brainseg.segment_case(brats, "lgg-unet2d")


# ------------------------------------------------------------------------------ hardening: bad and odd inputs


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


@pytest.mark.hardening
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


@pytest.mark.hardening
def test_max_voxels_is_configurable(monkeypatch):
    monkeypatch.setenv("BRAINSEG_MAX_VOXELS", "1000")
    with pytest.raises(BrainsegInputError, match="limit of 1,000"):
        napari_brainseg.segment(np.zeros((4, 10, 10, 11), np.float32), device="cpu")
    monkeypatch.setenv("BRAINSEG_MAX_VOXELS", "lots")
    with pytest.raises(BrainsegInputError, match="not a whole number"):
        napari_brainseg.segment(np.zeros((4, 10, 10, 11), np.float32), device="cpu")


@pytest.mark.hardening
def test_huge_case_on_disk_refused_from_its_header(tmp_path):
    folder = tmp_path / "Brats18_Huge_1"
    folder.mkdir()
    for modality in ("flair", "t1", "t1ce", "t2"):
        write_header_only_nifti(folder / f"Brats18_Huge_1_{modality}.nii", (512, 512, 400))
    with pytest.raises(BrainsegInputError, match="too large to segment: 512 x 512 x 400"):
        napari_brainseg.read_case(folder)


@pytest.mark.hardening
def test_three_of_four_modalities(tmp_path):
    folder = write_brats_case(tmp_path, modalities=("flair", "t1", "t1ce"))
    with pytest.raises(BrainsegInputError, match=r"missing modality t2 \(t2\)"):
        napari_brainseg.segment_case(folder)


@pytest.mark.hardening
def test_fractional_labels_refused_by_writer(tmp_path):
    with pytest.raises(BrainsegInputError, match="labels must be integers"):
        write_labels(tmp_path / "x.nii.gz", np.full((4, 4, 4), 0.5))
    assert not list(tmp_path.iterdir())


@pytest.mark.hardening
def test_negative_labels_written_as_signed_integers(tmp_path):
    labels = np.zeros((4, 5, 6), np.int32)
    labels[1, 2, 3] = -3
    out = write_labels(tmp_path / "x.nii.gz", labels)[0]
    image = nib.load(out)
    assert image.get_data_dtype() == np.int16
    np.testing.assert_array_equal(np.asarray(image.dataobj).transpose(2, 1, 0), labels)


@pytest.mark.hardening
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


@pytest.mark.hardening
def test_3d_stack_into_2d_model_is_slice_wise():
    stack = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3)).astype(np.uint8)
    result = napari_brainseg.segment(stack, device="cpu")
    channels = napari_brainseg.segment([stack[..., 0], stack[..., 1], stack[..., 2]], device="cpu")
    assert result.model == "lgg-unet2d" and result.labels.shape == (3, 32, 32)
    np.testing.assert_array_equal(result.labels, channels.labels)


@pytest.mark.hardening
def test_tiny_volume_smaller_than_the_patch():
    image = np.random.default_rng(0).random((4, 5, 6, 7)).astype(np.float32) + 1
    result = napari_brainseg.segment(image, device="cpu")
    assert result.labels.shape == (5, 6, 7) and result.labels.dtype == np.uint8


@pytest.mark.hardening
def test_tiny_slice():
    result = napari_brainseg.segment(np.full((5, 7, 3), 100, np.uint8), device="cpu")
    assert result.labels.shape == (5, 7)


@pytest.mark.hardening
def test_all_zero_image_gives_empty_labels_and_says_so():
    result = napari_brainseg.segment(np.zeros((4, 12, 14, 16), np.float32), device="cpu")
    assert not result.labels.any() and any("constant" in m for m in result.messages)


@pytest.mark.hardening
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


@pytest.mark.hardening
def test_anisotropic_oblique_case_segments_and_writes_its_geometry(tmp_path):
    folder = write_brats_case(tmp_path / "in", affine=OBLIQUE_AFFINE)
    result, case = napari_brainseg.segment_case(folder, device="cpu")
    assert result.settings["spacing_mm"] == pytest.approx([3.0, 1.1, 0.9])
    out = napari_brainseg.write_result(result, case, tmp_path)[0]
    source, written = nib.load(str(folder / "Brats18_Tiny_1_flair.nii.gz")), nib.load(out)
    assert np.array_equal(written.affine, source.affine) and written.shape == source.shape
    assert written.header.get_zooms() == source.header.get_zooms()
    assert no_temp_files(tmp_path)


@pytest.mark.hardening
def test_paths_with_spaces_and_non_ascii(tmp_path):
    folder = write_lgg_patient(tmp_path / "my scans" / "Ünïcødé 病例", n_slices=2, size=32)
    result, case = napari_brainseg.segment_case(folder, device="cpu")
    out = tmp_path / "résultats et masques"
    out.mkdir()
    assert len(napari_brainseg.write_result(result, case, out)) == 2
