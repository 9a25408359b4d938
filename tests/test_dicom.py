"""DICOM exams in, NIfTI and DICOM SEG out (issue 11): a four-series MR exam written from a real
BraTS case (tests/dicom_exam) segments like the NIfTI case, and its labels overlay the images in
nibabel, in napari and - as a DICOM SEG read back with highdicom - in a DICOM reader.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from napari_brainseg.errors import BrainsegInputError
from napari_brainseg.io.dicom import assign_series, find_series, read_dicom_exam

from .dicom_exam import DESCRIPTIONS, SERIES_ORDER, write_exam


@pytest.fixture(scope="module")
def exam(brats18_cropped, tmp_path_factory):
    return write_exam(brats18_cropped, tmp_path_factory.mktemp("dicom") / "EXAM1")


def test_series_recognised_from_descriptions_and_overridden(exam):
    series = find_series(exam)
    assert [s.description for s in series] == [DESCRIPTIONS[m] for m in SERIES_ORDER]
    chosen, lines = assign_series(series)
    assert {m: s.folder.name for m, s in chosen.items()} == {"t1": "SE001", "t2": "SE002", "flair": "SE003", "t1ce": "SE004"}
    assert any("FLAIR: series #3 'AX T2 FLAIR' (SE003" in line for line in lines)
    swapped, _ = assign_series(series, {"flair": "SE002", "t2": "3"})  # by folder name and by series number
    assert swapped["flair"].folder.name == "SE002" and swapped["t2"].folder.name == "SE003"
    with pytest.raises(BrainsegInputError, match="no T2 series recognised.*--series t2="):
        assign_series(series, {"flair": "SE002"})  # the T2 series taken for FLAIR, none left for T2
    with pytest.raises(BrainsegInputError, match="SE009: no series match"):
        assign_series(series, {"flair": "SE009"})


def test_exam_reads_like_the_nifti_case(exam, brats18_cropped):
    from napari_brainseg.io.brats import read_brats_case

    case, nifti = read_dicom_exam(exam), read_brats_case(brats18_cropped)
    assert np.allclose(case.affine, nifti.affine, atol=1e-4)
    for modality, image in nifti.images.items():
        assert np.array_equal(case.images[modality], image), modality


def test_cli_exam_to_nifti_and_dicom_seg(exam, brats18_cropped, tmp_path, capsys):
    import highdicom as hd
    import pydicom

    from napari_brainseg.cli import main
    from napari_brainseg.conventions import BRATS_2018
    from napari_brainseg.engine.segment import segment_case

    assert main(["predict", str(exam), "--output", str(tmp_path), "--dicom-seg", "--device", "cpu", "--no-overlay",
                 "--fast"]) == 0  # one network: the geometry is the same for the ensemble
    err = capsys.readouterr().err
    assert "FLAIR: series #3" in err  # which series became which is said
    labels_file, seg_file = tmp_path / "EXAM1.nii.gz", tmp_path / "EXAM1_seg.dcm"
    nifti_result, nifti_case = segment_case(brats18_cropped, device="cpu", fast=True)

    # nibabel: the labels lie on the FLAIR series' grid, the same as the NIfTI case's result
    written = nib.load(str(labels_file))
    assert np.allclose(written.affine, nifti_case.affine, atol=1e-4)
    labels = np.asarray(written.dataobj).transpose(2, 1, 0)
    assert np.array_equal(labels, nifti_result.labels)
    assert {2, 4} <= set(np.unique(labels))

    # DICOM SEG: references the FLAIR series, names the classes, and its frames are the labels
    seg = hd.seg.segread(str(seg_file))
    flair = sorted((exam / "SE003").iterdir())
    flair_uid = pydicom.dcmread(flair[0], stop_before_pixels=True).SeriesInstanceUID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == flair_uid
    names = [seg.get_segment_description(n).SegmentLabel for n in (1, 2, 3)]
    assert names == [c.name for c in BRATS_2018.classes]
    from napari_brainseg.io.dicom import find_series as series_of

    ordered = next(s for s in series_of(exam) if s.uid == flair_uid).files  # slice order of the volume
    uids = [pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in ordered]
    frames = seg.get_pixels_by_source_instance(uids, combine_segments=True, relabel=False)
    expected = np.zeros_like(labels)
    for number, cls in enumerate(BRATS_2018.classes, start=1):
        expected[labels == cls.value] = number
    assert np.array_equal(frames, expected)


def test_open_folder_gives_one_layer_per_series_in_patient_coordinates(make_napari_viewer, exam):
    import pydicom

    viewer = make_napari_viewer()
    layers = viewer.open(str(exam), plugin="napari-brainseg")
    assert sorted(layer.name for layer in layers) == sorted(
        f"EXAM1 {m} (series {n})" for n, m in enumerate(SERIES_ORDER, start=1)
    )
    assert [layer.visible for layer in layers].count(True) == 1 and viewer.layers["EXAM1 flair (series 3)"].visible
    layer = viewer.layers["EXAM1 flair (series 3)"]
    # the first slice's first voxel is where the scanner put it: ImagePositionPatient, as (S, P, L)
    first = min((pydicom.dcmread(f, stop_before_pixels=True) for f in (exam / "SE003").iterdir()),
                key=lambda ds: float(ds.ImagePositionPatient[2]))
    position = [float(v) for v in first.ImagePositionPatient]
    assert np.allclose(layer.data_to_world((0, 0, 0)), position[::-1], atol=1e-3)
    ds = first
    step = np.asarray(layer.data_to_world((0, 0, 1))) - np.asarray(layer.data_to_world((0, 0, 0)))
    assert np.allclose(step[::-1], np.asarray(ds.ImageOrientationPatient[:3], float) * float(ds.PixelSpacing[1]))
