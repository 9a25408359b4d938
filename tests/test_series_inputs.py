"""The widget's input layers on different grids (issue 11): a real BraTS case whose series were re-saved on
different grids (tests/scan_variants) and written as a DICOM exam (tests/dicom_exam), opened as napari
layers by the plugin's reader, is brought onto the FLAIR layer's grid exactly as the CLI brings the exam;
which series became which modality is said, and a series picked against its description is named; and
the NIfTI labels written for the exam overlay its series in napari.
"""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Image

from napari_brainseg.errors import BrainsegInputError
from napari_brainseg.io.dicom import read_dicom_exam
from napari_brainseg.plugin.dicom_layers import read_dicom_folder
from napari_brainseg.plugin.series_inputs import capture, layer_modality, onto_reference, series_lines

from .dicom_exam import write_exam
from .scan_variants import different_grids_case

ORDER = ("flair", "t1", "t1ce", "t2")


@pytest.fixture(scope="module")
def mixed_exam(brats18_cropped, tmp_path_factory):
    """T1 at 1 x 1 x 3 mm, T1ce at 1.2 mm, T2 with another field of view; FLAIR as it was."""
    root = tmp_path_factory.mktemp("mixed")
    case = different_grids_case(brats18_cropped, root / "nifti" / brats18_cropped.name)
    return write_exam(case, root / "EXAM2")


@pytest.fixture(scope="module")
def series_layers(mixed_exam):
    return [Image(data, **kwargs) for data, kwargs, _ in read_dicom_folder(mixed_exam)]


def chosen_by_guess(layers) -> dict:
    return {layer_modality(layer): layer for layer in layers}


def test_series_on_different_grids_come_onto_flair_as_in_the_cli(mixed_exam, series_layers):
    chosen = chosen_by_guess(series_layers)
    assert set(chosen) == set(ORDER)
    assert len({chosen[m].data.shape for m in ORDER}) == 4  # each series on its own grid
    grids = capture(ORDER, [chosen[m] for m in ORDER])
    arrays, lines, transforms = onto_reference(grids, [chosen[m].data for m in ORDER])
    cli_case = read_dicom_exam(mixed_exam)  # what `napari-brainseg predict EXAM` segments
    assert any(w.startswith("the T1 series #1 'T1 SE AX' ((51,") and w.endswith("resampled onto the flair grid")
               for w in cli_case.warnings), cli_case.warnings  # the CLI's note names the series, not a file
    for modality, array in zip(ORDER, arrays):
        assert array.shape == chosen["flair"].data.shape
        np.testing.assert_array_equal(array, cli_case.images[modality], err_msg=modality)
    assert arrays[0] is not None and np.shares_memory(arrays[0], np.asarray(chosen["flair"].data))
    assert len(lines) == 3 and all("resampled onto the flair grid" in line for line in lines)
    assert any(line.startswith(f"layer '{chosen['t1'].name}'") for line in lines)
    assert transforms == {}


def test_series_lines_say_which_series_became_which(series_layers):
    chosen = chosen_by_guess(series_layers)
    lines = series_lines({m: chosen[m] for m in ORDER})
    assert lines[0] == f"FLAIR: series 'AX T2 FLAIR' (layer '{chosen['flair'].name}')"
    assert len(lines) == 4 and not any("picker" in line for line in lines)
    swapped = series_lines({"t1": chosen["t1ce"], "t1ce": chosen["t1"]})  # the user's override
    assert swapped[0].endswith("as chosen in the picker (its description reads as T1 post-contrast)")


def test_layers_on_one_grid_pass_through_untouched(series_layers):
    chosen = chosen_by_guess(series_layers)
    flair = chosen["flair"]
    copies = [Image(np.array(flair.data), metadata=dict(flair.metadata), name=f"copy {m}") for m in ORDER]
    arrays, lines, _ = onto_reference(capture(ORDER, copies), [layer.data for layer in copies])
    assert lines == [] and all(a is np.asarray(layer.data) for a, layer in zip(arrays, copies))


def test_different_shapes_without_a_position_are_one_clear_error():
    layers = [Image(np.zeros((4, 5, 6), np.float32), name=m) for m in ORDER[:3]]
    layers.append(Image(np.zeros((4, 5, 7), np.float32), name="t2"))
    with pytest.raises(BrainsegInputError, match=r"different shapes .*'t2' \(4, 5, 7\).*cannot be resampled"):
        capture(ORDER, layers)


def test_nifti_result_overlays_its_dicom_series_in_napari(make_napari_viewer, mixed_exam, tmp_path):
    """The CLI's EXAM.nii.gz (labels on the FLAIR series' grid) opened beside the exam's series: its
    voxels lie where the scanner put the FLAIR slices (ImagePositionPatient), and on the T1 series,
    acquired at 1 x 1 x 3 mm on another grid, labelled brain lands on brain."""
    import pydicom

    case = read_dicom_exam(mixed_exam)
    brain = (case.images["flair"] > 0).astype(np.uint8) * 2  # the FLAIR's brain as "edema": what lies where is known
    [written] = case.write_labels(brain, tmp_path)  # what `napari-brainseg predict EXAM` writes
    viewer = make_napari_viewer()
    series = {layer_modality(layer): layer for layer in viewer.open(str(mixed_exam), plugin="napari-brainseg")}
    [labels] = viewer.open(written, plugin="napari-brainseg")
    first = min((pydicom.dcmread(f, stop_before_pixels=True) for f in (mixed_exam / "SE003").iterdir()),
                key=lambda ds: float(ds.ImagePositionPatient[2]))
    position = [float(v) for v in first.ImagePositionPatient][::-1]  # (S, P, L), as napari lists LPS
    np.testing.assert_allclose(labels.data_to_world((0, 0, 0)), position, atol=1e-3)
    corner = tuple(s - 1 for s in labels.data.shape)
    np.testing.assert_allclose(labels.data_to_world(corner), series["flair"].data_to_world(corner), atol=1e-3)
    # every 7th labelled voxel, looked up in the T1 series by world position
    points = np.argwhere(labels.data > 0)[::7]
    world = np.array([labels.data_to_world(p) for p in points])
    t1 = series["t1"]
    inside = np.array([t1.world_to_data(w) for w in world]).round().astype(int)
    valid = np.all((inside >= 0) & (inside < t1.data.shape), axis=1)
    assert valid.mean() > 0.95
    values = t1.data[tuple(inside[valid].T)]
    assert (values > 0).mean() > 0.97  # brain on brain; a mirrored or shifted overlay lands on background
