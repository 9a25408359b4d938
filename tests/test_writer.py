"""The labels writer restores source geometry, refuses to overwrite, and round-trips LGG masks."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import tifffile

from napari_brainseg.errors import BrainsegInputError
from napari_brainseg.io.writer import write_labels
from napari_brainseg.plugin.readers import get_reader, read_lgg_folder

from .conftest import BRATS18_CASE, LGG_PATIENT
from .helpers import layers_by_name


def _seg(brats18_layers):
    data, kwargs, _ = layers_by_name(brats18_layers)[f"{BRATS18_CASE} seg"]
    return data, kwargs


def test_nifti_round_trip_keeps_affine_header_and_labels(brats18_case, brats18_layers, tmp_path):
    data, kwargs = _seg(brats18_layers)
    out = tmp_path / "edited_seg.nii.gz"
    assert write_labels(out, data, kwargs["metadata"], scale=kwargs["scale"]) == [str(out)]
    written, source = nib.load(str(out)), nib.load(str(brats18_case / f"{BRATS18_CASE}_seg.nii.gz"))
    np.testing.assert_array_equal(written.affine, source.affine)
    np.testing.assert_array_equal(written.header.get_sform(), source.header.get_sform())
    np.testing.assert_array_equal(written.header.get_qform(), source.header.get_qform())
    assert written.header.get_zooms() == source.header.get_zooms()
    assert written.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asarray(written.dataobj), np.asarray(source.dataobj))
    # and our own reader overlays it on the case again
    [(reread, reread_kwargs, kind)] = get_reader(str(out))(str(out))
    assert kind == "labels" and reread_kwargs["scale"] == kwargs["scale"]
    np.testing.assert_array_equal(reread, data)


def test_writer_refuses_to_overwrite(brats18_layers, tmp_path):
    data, kwargs = _seg(brats18_layers)
    out = tmp_path / "seg.nii.gz"
    out.write_bytes(b"precious")
    with pytest.raises(BrainsegInputError, match="already exists"):
        write_labels(out, data, kwargs["metadata"])
    assert out.read_bytes() == b"precious"
    write_labels(out, data, kwargs["metadata"], overwrite=True)
    assert nib.load(str(out)).shape == (240, 240, 155)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seg.nii.gz"]  # no temporary files left


def test_labels_without_nifti_source_get_identity_with_scale(tmp_path):
    labels = np.zeros((4, 5, 6), np.int32)
    labels[1, 2, 3] = 300  # does not fit uint8: written as int16, value unchanged
    out = tmp_path / "drawn.nii"
    write_labels(out, labels, {}, scale=(3.0, 0.5, 0.5))
    image = nib.load(str(out))
    np.testing.assert_array_equal(image.affine, np.diag([0.5, 0.5, 3.0, 1.0]))
    assert image.shape == (6, 5, 4) and image.get_data_dtype() == np.int16
    assert np.asarray(image.dataobj)[3, 2, 1] == 300


def test_labels_that_do_not_match_the_source_grid_are_refused(brats18_layers, tmp_path):
    data, kwargs = _seg(brats18_layers)
    with pytest.raises(BrainsegInputError, match="does not match the source image grid"):
        write_labels(tmp_path / "x.nii.gz", data[:, :100], kwargs["metadata"])


def test_lgg_mask_slices_round_trip(lgg_patient, tmp_path):
    layers = layers_by_name(read_lgg_folder(lgg_patient))
    mask, kwargs, _ = layers[f"{LGG_PATIENT} mask"]
    out = tmp_path / LGG_PATIENT
    written = write_labels(out, mask, kwargs["metadata"])
    assert len(written) == mask.shape[0]
    assert (out / f"{LGG_PATIENT}_10_mask.tif").is_file()
    original = tifffile.imread(lgg_patient / f"{LGG_PATIENT}_10_mask.tif")
    np.testing.assert_array_equal(tifffile.imread(out / f"{LGG_PATIENT}_10_mask.tif"), original)  # 0/255
    # the written folder reads back as the same mask (images copied beside it, as in kaggle_3m)
    for path in lgg_patient.glob(f"{LGG_PATIENT}_*[0-9].tif"):
        (out / path.name).write_bytes(path.read_bytes())
    reread = layers_by_name(read_lgg_folder(out))[f"{LGG_PATIENT} mask"][0]
    np.testing.assert_array_equal(reread, mask)
    with pytest.raises(BrainsegInputError, match="already exists"):
        write_labels(out, mask, kwargs["metadata"])


def _save_with_napari_dialog(viewer, monkeypatch, folder, filter_word):
    """File > Save Selected Layers as a user does it: napari's suggested name, the plugin's filter."""
    from pathlib import Path

    from napari._qt import qt_viewer

    def answer(_parent, _caption, suggested, filter, **_options):
        chosen = next(f for f in filter.split(";;") if filter_word in f)
        return str(folder / Path(suggested).name), chosen

    monkeypatch.setattr(qt_viewer.QFileDialog, "getSaveFileName", staticmethod(answer))
    viewer.window._qt_viewer._save_layers_dialog(selected=True)


def test_napari_save_dialog_with_the_suggested_name(make_napari_viewer, monkeypatch, brats18_case, lgg_patient, tmp_path):
    """Issue 17 (1): a name without .nii.gz gets it; a 2D slice saves as NIfTI; saved masks reopen."""
    viewer = make_napari_viewer()
    viewer.open(str(brats18_case / f"{BRATS18_CASE}_seg.nii.gz"), plugin="napari-brainseg")
    seg = viewer.layers[0]
    seg.name = f"{BRATS18_CASE} tumour (brats-unet3d)"  # the widget's result name: no file suffix
    viewer.layers.selection = {seg}
    _save_with_napari_dialog(viewer, monkeypatch, tmp_path, "NIfTI")
    saved = tmp_path / f"{BRATS18_CASE} tumour (brats-unet3d).nii.gz"
    assert sorted(p.name for p in tmp_path.iterdir()) == [saved.name]  # no temporary file left behind
    source = nib.load(str(brats18_case / f"{BRATS18_CASE}_seg.nii.gz"))
    np.testing.assert_array_equal(nib.load(str(saved)).affine, source.affine)
    np.testing.assert_array_equal(np.asarray(nib.load(str(saved)).dataobj), np.asarray(source.dataobj))

    viewer.layers.clear()
    slice_path = lgg_patient / f"{LGG_PATIENT}_12.tif"
    viewer.open(str(slice_path), plugin="napari-brainseg")
    mask = viewer.layers[f"{LGG_PATIENT}_12 mask"]
    viewer.layers.selection = {mask}
    _save_with_napari_dialog(viewer, monkeypatch, tmp_path, "NIfTI")
    flat = nib.load(str(tmp_path / f"{LGG_PATIENT}_12 mask.nii.gz"))
    assert flat.shape == (256, 256, 1)
    np.testing.assert_array_equal(np.asarray(flat.dataobj)[..., 0].T, mask.data)

    viewer.layers.clear()
    viewer.open(str(lgg_patient), plugin="napari-brainseg")
    stack = viewer.layers[f"{LGG_PATIENT} mask"]
    viewer.layers.selection = {stack}
    _save_with_napari_dialog(viewer, monkeypatch, tmp_path, "LGG mask slices")
    masks_folder = tmp_path / f"{LGG_PATIENT} mask"
    assert (masks_folder / f"{LGG_PATIENT}_10_mask.tif").is_file()
    viewer.layers.clear()
    viewer.open(str(masks_folder), plugin="napari-brainseg")  # a folder of saved masks reopens
    (reopened,) = viewer.layers
    np.testing.assert_array_equal(reopened.data, stack.data)
    assert reopened.metadata["brainseg"]["patient_id"] == LGG_PATIENT
