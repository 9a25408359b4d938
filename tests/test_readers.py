"""Reader contributions on real BraTS / LGG files: layer names, data, geometry, labels, and None for
paths that belong to other readers; and odd-but-valid files (NaN/Inf voxels, all-zero images, fractional
seg files, oblique anisotropic geometry, paths with spaces and non-ASCII) that open correctly.

Tests marked ``hardening`` are rows of the troubleshooting table (``tests/hardening_catalogue.py``).
"""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pytest
import tifffile

from napari_brainseg import conventions
from napari_brainseg.io.lgg import CHANNELS
from napari_brainseg.io.writer import write_labels
from napari_brainseg.plugin.readers import get_reader

from .conftest import BRATS18_CASE, BRATS23_CASE, LGG_PATIENT
from .helpers import copy_case, gunzip, layers_by_name, nibabel_zyx
from .tiny_cases import (
    OBLIQUE_AFFINE,
    brain_volume,
    write_brats_case,
    write_lgg_patient,
    write_nifti,
)


def read(path):
    reader = get_reader(str(path))
    assert reader is not None, f"plugin should claim {path}"
    return reader(str(path))


# ---------------------------------------------------------------------------------------------- BraTS


def test_brats2018_folder(brats18_case, brats18_layers):
    layers = layers_by_name(brats18_layers)
    assert list(layers) == [f"{BRATS18_CASE} {m}" for m in ("flair", "t1", "t1ce", "t2", "seg")]
    flair, kwargs, kind = layers[f"{BRATS18_CASE} flair"]
    assert kind == "image" and flair.shape == (155, 240, 240)
    np.testing.assert_array_equal(flair, nibabel_zyx(brats18_case / f"{BRATS18_CASE}_flair.nii.gz"))
    lo, hi = kwargs["contrast_limits"]
    nonzero = flair[flair != 0]
    assert nonzero.min() <= lo < hi <= nonzero.max()
    assert kwargs["scale"] == (1.0, 1.0, 1.0)
    source = nib.load(str(brats18_case / f"{BRATS18_CASE}_flair.nii.gz"))
    np.testing.assert_allclose(kwargs["metadata"]["nifti_affine"], source.affine)
    assert nib.Nifti1Header(binaryblock=kwargs["metadata"]["nifti_header"]).get_data_shape() == (240, 240, 155)

    seg, seg_kwargs, seg_kind = layers[f"{BRATS18_CASE} seg"]
    assert seg_kind == "labels" and seg.dtype == np.uint8
    np.testing.assert_array_equal(seg, nibabel_zyx(brats18_case / f"{BRATS18_CASE}_seg.nii.gz"))
    assert set(np.unique(seg)) <= {0, 1, 2, 4}
    names = seg_kwargs["metadata"]["label_names"]
    assert names[4] == "enhancing tumour" and names[2] == "peritumoural edema"
    assert seg_kwargs["features"]["index"] == [0, 1, 2, 4]
    colors = seg_kwargs["colormap"].color_dict
    np.testing.assert_allclose(colors[4][:3], [1.0, 0.843, 0.0], atol=0.01)  # fixed ET colour
    # one case, one world: identical scale on every layer
    assert {kw["scale"] for _, kw, _ in brats18_layers} == {(1.0, 1.0, 1.0)}


def test_brats2023_folder(brats23_case):
    layers = layers_by_name(read(brats23_case))
    assert list(layers) == [
        f"{BRATS23_CASE} flair (t2f)",
        f"{BRATS23_CASE} t1 (t1n)",
        f"{BRATS23_CASE} t1ce (t1c)",
        f"{BRATS23_CASE} t2 (t2w)",
    ]
    data, kwargs, _ = layers[f"{BRATS23_CASE} t1ce (t1c)"]
    np.testing.assert_array_equal(data, nibabel_zyx(brats23_case / f"{BRATS23_CASE}-t1c.nii.gz"))
    assert kwargs["metadata"]["brainseg"]["modality"] == "t1ce"


def test_2023_named_copy_of_2018_case_uses_2023_classes(brats18_case, tmp_path):
    rename = {"flair": "t2f", "t1": "t1n", "t1ce": "t1c", "t2": "t2w", "seg": "seg"}
    case = tmp_path / "BraTS-GLI-99999-000"
    case.mkdir()
    for old, new in rename.items():
        source = nib.load(str(brats18_case / f"{BRATS18_CASE}_{old}.nii.gz"))
        data = np.asarray(source.dataobj)
        if old == "seg":
            data = np.where(data == 4, 3, data).astype(np.uint8)  # 2023: ET is 3
        nib.save(nib.Nifti1Image(data, source.affine, source.header), str(case / f"{case.name}-{new}.nii.gz"))
    layers = layers_by_name(read(case))
    seg, kwargs, kind = layers[f"{case.name} seg"]
    assert kind == "labels" and set(np.unique(seg)) == {0, 1, 2, 3}
    assert kwargs["metadata"]["label_convention"] == "brats2023"
    assert kwargs["metadata"]["label_names"][3] == conventions.BRATS_2023.names()[3] == "ET (enhancing tumour)"


def test_uncompressed_nii_case_folder(brats_case_folder, tmp_path):
    name = brats_case_folder.name
    case = tmp_path / name
    case.mkdir()
    for path in brats_case_folder.iterdir():
        gunzip(path, case / path.name[: -len(".gz")])
    layers = layers_by_name(read(case))
    assert len(layers) == 5
    np.testing.assert_array_equal(layers[f"{name} t2"][0], nibabel_zyx(brats_case_folder / f"{name}_t2.nii.gz"))


def test_missing_modality_opens_the_rest_and_warns(brats_case_folder, tmp_path):
    case = copy_case(brats_case_folder, tmp_path / brats_case_folder.name, skip=("_t1ce",))
    with pytest.warns(UserWarning, match=r"missing modality t1ce"):
        layers = layers_by_name(read(case))
    assert [n.split()[-1] for n in layers] == ["flair", "t1", "t2", "seg"]


# ---------------------------------------------------------------------------------------------- single NIfTI


def test_single_nifti_image(brats18_case):
    path = brats18_case / f"{BRATS18_CASE}_t1.nii.gz"
    [(data, kwargs, kind)] = read(path)
    assert kind == "image" and kwargs["name"] == f"{BRATS18_CASE}_t1"
    np.testing.assert_array_equal(data, nibabel_zyx(path))
    assert kwargs["metadata"]["source_path"] == str(path)


def test_single_uncompressed_nifti_image(brats18_case, tmp_path):
    path = gunzip(brats18_case / f"{BRATS18_CASE}_t1.nii.gz", tmp_path / "scan.nii")
    [(data, kwargs, kind)] = read(path)
    assert kind == "image" and kwargs["name"] == "scan"
    np.testing.assert_array_equal(data, nibabel_zyx(path))


def test_single_segmentation_by_name(brats18_case):
    path = brats18_case / f"{BRATS18_CASE}_seg.nii.gz"
    [(data, kwargs, kind)] = read(path)
    assert kind == "labels" and kwargs["metadata"]["label_convention"] == "brats2018"
    np.testing.assert_array_equal(data, nibabel_zyx(path))


def test_single_segmentation_by_integer_values(brats18_case, tmp_path):
    source = nib.load(str(brats18_case / f"{BRATS18_CASE}_seg.nii.gz"))
    path = tmp_path / "prediction_0001.nii.gz"  # nothing in the name says "segmentation"
    nib.save(nib.Nifti1Image(np.asarray(source.dataobj).astype(np.int16), source.affine), str(path))
    [(data, kwargs, kind)] = read(path)
    assert kind == "labels" and kwargs["metadata"]["label_convention"] == "brats2018"


def test_msd_task01_4d_file(brats18_case, tmp_path):
    # Decathlon Task01 stacks FLAIR, T1w, T1gd, T2w as the 4th axis of one file
    order = ("flair", "t1", "t1ce", "t2")
    volumes = [nib.load(str(brats18_case / f"{BRATS18_CASE}_{m}.nii.gz")) for m in order]
    stacked = np.stack([np.asarray(v.dataobj) for v in volumes], axis=-1).astype(np.float32)
    path = tmp_path / "BRATS_001.nii.gz"
    nib.save(nib.Nifti1Image(stacked, volumes[0].affine), str(path))
    layers = layers_by_name(read(path))
    assert list(layers) == ["BRATS_001 FLAIR", "BRATS_001 T1w", "BRATS_001 T1gd", "BRATS_001 T2w"]
    np.testing.assert_array_equal(layers["BRATS_001 T1gd"][0], stacked[..., 2].transpose(2, 1, 0))
    assert layers["BRATS_001 T2w"][1]["scale"] == (1.0, 1.0, 1.0)


def test_anisotropic_spacing_becomes_zyx_scale(tmp_path):
    path = tmp_path / "aniso.nii.gz"
    image = nib.Nifti1Image(np.random.default_rng(0).random((20, 30, 10), dtype=np.float32), np.diag([0.5, 0.8, 3.0, 1]))
    nib.save(image, str(path))
    [(data, kwargs, _)] = read(path)
    assert data.shape == (10, 30, 20) and kwargs["scale"] == pytest.approx((3.0, 0.8, 0.5))


# ---------------------------------------------------------------------------------------------- LGG


def test_lgg_patient_folder_in_integer_slice_order(lgg_patient):
    layers = layers_by_name(read(lgg_patient))
    assert list(layers) == [f"{LGG_PATIENT} {c}" for c in CHANNELS] + [f"{LGG_PATIENT} mask"]
    flair, kwargs, _ = layers[f"{LGG_PATIENT} FLAIR"]
    numbers = kwargs["metadata"]["brainseg"]["slice_numbers"]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 10
    slice_10 = tifffile.imread(lgg_patient / f"{LGG_PATIENT}_10.tif")
    np.testing.assert_array_equal(flair[9], slice_10[..., 1])  # index 9 is slice 10, not slice 18
    mask, mask_kwargs, kind = layers[f"{LGG_PATIENT} mask"]
    assert kind == "labels" and mask.shape == flair.shape
    np.testing.assert_array_equal(mask[9], tifffile.imread(lgg_patient / f"{LGG_PATIENT}_10_mask.tif") > 0)
    assert mask_kwargs["metadata"]["label_names"][1].startswith("FLAIR abnormality")


def test_lgg_single_slice(lgg_patient):
    path = lgg_patient / f"{LGG_PATIENT}_12.tif"
    layers = layers_by_name(read(path))
    assert list(layers) == [f"{LGG_PATIENT}_12 {c}" for c in CHANNELS] + [f"{LGG_PATIENT}_12 mask"]
    original = tifffile.imread(path)
    for index, channel in enumerate(CHANNELS):
        data = layers[f"{LGG_PATIENT}_12 {channel}"][0]
        assert data.shape == (256, 256)
        np.testing.assert_array_equal(data, original[..., index])


def test_lgg_uncompressed_tiffs_as_distributed(lgg_patient, tmp_path):
    # the data here is WebP/deflate-compressed; the original distribution is uncompressed TIFF
    folder = tmp_path / LGG_PATIENT
    folder.mkdir()
    for path in lgg_patient.glob("*.tif"):
        tifffile.imwrite(folder / path.name, tifffile.imread(path), compression=None)
    with tifffile.TiffFile(folder / f"{LGG_PATIENT}_1.tif") as tif:
        assert tif.pages[0].compression == 1  # NONE
    ours = layers_by_name(read(folder))
    reference = layers_by_name(read(lgg_patient))
    for name, (data, _, _) in reference.items():
        np.testing.assert_array_equal(ours[name][0], data)
    [(mask, _, kind)] = read(folder / f"{LGG_PATIENT}_3_mask.tif")  # a lone mask slice
    assert kind == "labels" and mask.shape == (256, 256)


# ---------------------------------------------------------------------------------------------- not ours


def test_returns_none_for_foreign_paths(tmp_path, data_dir):
    import matplotlib.pyplot as plt

    png = tmp_path / "picture.png"
    plt.imsave(png, np.zeros((8, 8)))
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    other = tmp_path / "some_folder"
    other.mkdir()
    (other / "readme.md").write_text("x")
    plain_tif = tmp_path / "micrograph.tif"
    tifffile.imwrite(plain_tif, np.zeros((8, 8), np.uint8))
    npy = tmp_path / "array.npy"
    np.save(npy, np.zeros(3))
    for path in (png, text, other, plain_tif, npy, data_dir / "lgg" / "kaggle_3m", tmp_path / "missing.nii.gz/x"):
        assert get_reader(str(path)) is None, path
    assert get_reader([str(png), str(text)]) is None  # multi-path stacks are napari's


def test_copy_with_unrelated_files_still_reads(brats_case_folder, tmp_path):
    case = copy_case(brats_case_folder, tmp_path / brats_case_folder.name)
    (case / "notes.txt").write_text("radiologist notes")
    shutil.copy(case / f"{case.name}_seg.nii.gz", case / "backup.nii.gz")
    assert len(read(case)) == 5


# ------------------------------------------------------------------------------ hardening: odd but valid


@pytest.mark.hardening
def test_nan_inf_voxels_open_with_finite_contrast(tmp_path):
    data = brain_volume().astype(np.float32)
    data[0, 0, :3] = (np.nan, np.inf, -np.inf)
    (layer,) = get_reader(str(tmp_path / "x_flair.nii"))(str(write_nifti(tmp_path / "x_flair.nii", data)))
    lo, hi = layer[1]["contrast_limits"]
    assert np.isfinite([lo, hi]).all() and hi > lo and layer[2] == "image"


@pytest.mark.hardening
def test_all_zero_image_opens(tmp_path):
    path = write_nifti(tmp_path / "blank_t1.nii.gz", np.zeros((8, 8, 8), np.int16))
    (layer,) = get_reader(str(path))(str(path))
    assert layer[2] == "image" and layer[1]["contrast_limits"] == (0.0, 1.0)


@pytest.mark.hardening
def test_fractional_seg_file_opens_as_image_with_warning(tmp_path):
    path = write_nifti(tmp_path / "case_seg.nii.gz", np.full((8, 8, 8), 0.5, np.float32))
    with pytest.warns(UserWarning, match="non-integer"):
        (layer,) = get_reader(str(path))(str(path))
    assert layer[2] == "image"


@pytest.mark.hardening
def test_anisotropic_oblique_round_trip_is_exact(tmp_path):
    """Reader -> labels layer -> writer: same affine (bit for bit), sform/qform, zooms and shape."""
    seg = np.zeros((20, 24, 16), np.uint8)
    seg[4:9, 6:10, 3:7] = 2
    folder = write_brats_case(tmp_path / "in", affine=OBLIQUE_AFFINE, seg=seg)
    layers = {kwargs["name"]: (data, kwargs) for data, kwargs, _ in get_reader(str(folder))(str(folder))}
    data, kwargs = layers["Brats18_Tiny_1 seg"]
    np.testing.assert_allclose(kwargs["scale"], (3.0, 1.1, 0.9), rtol=1e-6)
    out = write_labels(tmp_path / "out.nii.gz", data, kwargs["metadata"])[0]
    source, written = nib.load(str(folder / "Brats18_Tiny_1_seg.nii.gz")), nib.load(out)
    assert np.array_equal(written.affine, source.affine)
    assert np.array_equal(written.header.get_sform(), source.header.get_sform())
    assert np.allclose(written.header.get_qform(), source.header.get_qform(), atol=1e-5)
    assert written.header.get_zooms() == source.header.get_zooms()
    np.testing.assert_array_equal(np.asarray(written.dataobj), seg)


@pytest.mark.hardening
def test_paths_with_spaces_and_non_ascii(tmp_path):
    parent = tmp_path / "my scans" / "Ünïcødé 病例"
    brats = write_brats_case(parent)
    lgg = write_lgg_patient(parent)
    assert len(get_reader(str(brats))(str(brats))) == 4
    assert len(get_reader(str(lgg))(str(lgg))) == 4  # three sequences + mask
