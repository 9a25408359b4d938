"""The plugin inside a real napari viewer (Xvfb): open, coexist with other readers, save, sample data."""

from __future__ import annotations

import os

import nibabel as nib
import numpy as np
import pytest
import tifffile
from napari.layers import Image, Labels
from napari.utils.colormaps import DirectLabelColormap

from .conftest import BRATS18_CASE, LGG_PATIENT
from .helpers import copy_case

PLUGIN = "napari-brainseg"


def test_brats_case_opens_as_named_layers_in_one_world(make_napari_viewer, brats18_case):
    viewer = make_napari_viewer()
    viewer.open(str(brats18_case), plugin=PLUGIN)
    assert [layer.name for layer in viewer.layers] == [
        f"{BRATS18_CASE} {m}" for m in ("flair", "t1", "t1ce", "t2", "seg")
    ]
    seg = viewer.layers[f"{BRATS18_CASE} seg"]
    assert isinstance(seg, Labels) and isinstance(seg.colormap, DirectLabelColormap)
    assert list(seg.features["class"])[3] == "enhancing tumour"
    flair = viewer.layers[f"{BRATS18_CASE} flair"]
    assert isinstance(flair, Image) and flair.contrast_limits[1] < 1000
    extents = {tuple(map(tuple, layer.extent.world)) for layer in viewer.layers}
    assert len(extents) == 1  # every layer of the case occupies the same world box
    assert viewer.dims.ndim == 3 and viewer.dims.range[0].stop == pytest.approx(154, abs=1)


def test_lgg_patient_opens_as_stack(make_napari_viewer, lgg_patient):
    viewer = make_napari_viewer()
    viewer.open(str(lgg_patient), plugin=PLUGIN)
    assert [layer.name for layer in viewer.layers] == [
        f"{LGG_PATIENT} pre-contrast",
        f"{LGG_PATIENT} FLAIR",
        f"{LGG_PATIENT} post-contrast",
        f"{LGG_PATIENT} mask",
    ]
    assert viewer.layers[-1].data.shape[0] == len(list(lgg_patient.glob("*_mask.tif")))


def test_coexists_with_napari_builtin_reader(make_napari_viewer, lgg_patient, tmp_path):
    viewer = make_napari_viewer()
    slice_tif = lgg_patient / f"{LGG_PATIENT}_5.tif"
    viewer.open(str(slice_tif), plugin="napari")  # the builtin still reads it (as one RGB image)
    assert len(viewer.layers) == 1 and viewer.layers[0].rgb
    viewer.layers.clear()
    viewer.open(str(slice_tif), plugin=PLUGIN)  # ours: three sequences + mask
    assert len(viewer.layers) == 4
    viewer.layers.clear()
    plain = tmp_path / "micrograph.tif"
    tifffile.imwrite(plain, np.arange(64, dtype=np.uint8).reshape(8, 8))
    array = tmp_path / "array.npy"
    np.save(array, np.ones((4, 4)))
    viewer.open(str(plain))  # no plugin named: we decline, napari's builtin opens them
    viewer.open(str(array))
    assert [layer.name for layer in viewer.layers] == ["micrograph", "array"]


def test_coexists_with_another_nifti_plugin(make_napari_viewer, brats18_case):
    from npe2 import DynamicPlugin, PluginManager

    path = brats18_case / f"{BRATS18_CASE}_t1.nii.gz"
    with DynamicPlugin("other-nifti-reader", plugin_manager=PluginManager.instance()) as other:

        @other.contribute.reader(filename_patterns=["*.nii.gz"])
        def get_reader(path):
            return lambda p: [(np.asarray(nib.load(p).dataobj), {"name": "from other plugin"}, "image")]

        viewer = make_napari_viewer()
        viewer.open(str(path), plugin="other-nifti-reader")
        viewer.open(str(path), plugin=PLUGIN)
        assert [layer.name for layer in viewer.layers] == ["from other plugin", f"{BRATS18_CASE}_t1"]


def test_bad_input_adds_no_layers(make_napari_viewer, brats_case_folder, tmp_path):
    case = copy_case(brats_case_folder, tmp_path / brats_case_folder.name)
    t1ce = case / f"{case.name}_t1ce.nii.gz"
    t1ce.write_bytes(t1ce.read_bytes()[:20000])  # the 4th of 5 files is cut short
    viewer = make_napari_viewer()
    with pytest.raises(Exception) as info:
        viewer.open(str(case), plugin=PLUGIN)
    chain = f"{info.value} {info.value.__cause__}"
    assert t1ce.name in chain and "truncated" in chain
    assert len(viewer.layers) == 0


def test_missing_modality_warns_and_opens_the_rest(make_napari_viewer, brats_case_folder, tmp_path):
    case = copy_case(brats_case_folder, tmp_path / brats_case_folder.name, skip=("_flair",))
    viewer = make_napari_viewer()
    with pytest.warns(UserWarning, match="missing modality flair"):
        viewer.open(str(case), plugin=PLUGIN)
    assert len(viewer.layers) == 4


def test_save_labels_through_napari(make_napari_viewer, brats18_case, lgg_patient, tmp_path):
    viewer = make_napari_viewer()
    viewer.open(str(brats18_case / f"{BRATS18_CASE}_seg.nii.gz"), plugin=PLUGIN)
    out = tmp_path / "saved_seg.nii.gz"
    viewer.layers[0].save(str(out), plugin=PLUGIN)
    source = nib.load(str(brats18_case / f"{BRATS18_CASE}_seg.nii.gz"))
    np.testing.assert_array_equal(nib.load(str(out)).affine, source.affine)
    np.testing.assert_array_equal(np.asarray(nib.load(str(out)).dataobj), np.asarray(source.dataobj))
    viewer.layers.clear()
    viewer.open(str(lgg_patient), plugin=PLUGIN)
    folder = tmp_path / "masks"
    # a folder of mask slices: the writer is named (napari's save dialog picks it by its filter)
    viewer.layers[f"{LGG_PATIENT} mask"].save(str(folder), plugin=f"{PLUGIN}.write_labels_lgg")
    assert (folder / f"{LGG_PATIENT}_10_mask.tif").is_file()


@pytest.mark.parametrize("key", ["synthetic_brats_phantom", "synthetic_lgg_phantom"])
def test_sample_data(make_napari_viewer, key):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, key)
    assert any(isinstance(layer, Labels) for layer in viewer.layers)
    assert all("synthetic" in layer.name.lower() for layer in viewer.layers)


def test_screenshot_shows_an_axial_slice(make_napari_viewer, brats18_case):
    viewer = make_napari_viewer(show=True)
    viewer.open(str(brats18_case), plugin=PLUGIN)
    viewer.dims.set_point(0, 80)
    shot = viewer.screenshot(canvas_only=True, flash=False)
    assert shot.ndim == 3 and shot[..., :3].std() > 10  # a picture, not a blank canvas


def test_viewer_runs_on_qt6_without_the_pyqt5_deprecation_warning(make_napari_viewer, monkeypatch):
    """Issue 17 (8): the test extra's backend is Qt 6, and the plugin only reaches Qt through qtpy."""
    import re
    from pathlib import Path

    import qtpy
    from napari._qt import qt_main_window

    warnings: list[str] = []
    monkeypatch.setattr(qt_main_window, "show_warning", warnings.append)
    monkeypatch.setattr(qt_main_window, "SHOW_QT_WARNING", qtpy.API_NAME == "PyQt5", raising=False)
    viewer = make_napari_viewer(show=True)
    viewer.window.add_plugin_dock_widget(PLUGIN, "Segment tumour")
    assert qtpy.QT6, f"the tests run on {qtpy.API_NAME}; install the testing extra (napari[pyqt6])"
    assert not [w for w in warnings if "PyQt5" in w]
    source = Path(__file__).resolve().parents[1] / "src" / "napari_brainseg"
    direct = [p.name for p in source.rglob("*.py") if re.search(r"^\s*(from|import) (PyQt|PySide)", p.read_text(), re.MULTILINE)]
    assert direct == []  # backend-agnostic: Qt only through qtpy (and napari/magicgui)


def test_views_are_anatomical_and_the_contrast_range_is_the_data_range(make_napari_viewer, brats18_case):
    """Issue 17 (5): axis names instead of -3 -2 -1, the head upright in coronal and sagittal views
    (napari's axis transposes), and a contrast slider that reaches the data's maximum."""
    from .helpers import add_widget

    viewer = make_napari_viewer(show=bool(os.environ.get("BRAINSEG_SCREENSHOTS")))
    viewer.open(str(brats18_case), plugin=PLUGIN)
    add_widget(viewer)
    flair = viewer.layers[f"{BRATS18_CASE} flair"]
    assert flair.contrast_limits_range[1] == pytest.approx(float(flair.data.max()))
    assert flair.contrast_limits[1] < flair.data.max()  # the reader's window stays the starting view
    assert tuple(viewer.dims.axis_labels) == ("inferior-superior", "anterior-posterior", "right-left")  # LPS files
    assert tuple(viewer.camera.orientation2d) == ("down", "right")  # axial: anterior on top, right on the left
    viewer.dims.order = (1, 0, 2)  # coronal: z vertical
    assert tuple(viewer.camera.orientation2d) == ("up", "right")  # superior on top
    low, high = viewer.dims.range[1][:2]  # world coordinates: the readers place the volume at its origin
    viewer.dims.set_point(1, (low + high) / 2)
    viewer.reset_view()
    _shoot(viewer, "coronal_upright.png")
    viewer.dims.order = (2, 0, 1)  # sagittal
    assert tuple(viewer.camera.orientation2d) == ("up", "right")  # superior on top, anterior on the left


def test_camera_follows_where_the_reader_placed_the_file():
    """The readers place a RAS-stored file (BraTS-Africa) in patient coordinates, flipped on screen; the
    camera then sees the same S, P, L world as for an LPS file and must not flip it back. Unplaced data
    (identity layer affine) turns the camera instead: anterior up, right on the left."""
    import nibabel as nib

    from napari_brainseg.plugin.placement import layer_placement
    from napari_brainseg.plugin.views import axis_codes, camera_orientation, world_codes

    ras = np.diag([1.0, 1.0, 1.0, 1.0])
    lps = np.diag([-1.0, -1.0, 1.0, 1.0])
    assert nib.aff2axcodes(ras) == ("R", "A", "S") and axis_codes(ras) == ("S", "A", "R")
    for stored in (ras, lps):
        placed = world_codes(axis_codes(stored), layer_placement(stored)["affine"])
        assert placed == ("S", "P", "L")
        assert camera_orientation(placed, (1, 2)) == ("down", "right")  # axial: anterior up, right on the left
        assert camera_orientation(placed, (0, 2)) == ("up", "right")  # coronal: superior up
    unplaced = world_codes(axis_codes(ras), np.eye(4))
    assert unplaced == ("S", "A", "R") and camera_orientation(unplaced, (1, 2)) == ("up", "left")


def _shoot(viewer, name):
    from .widget_helpers import shoot

    shoot(viewer, name)


def test_preferred_reader_opens_without_asking(make_napari_viewer, brats18_case, lgg_patient, monkeypatch):
    """Issue 17 (6): with napari-brainseg as the preferred reader for the README's patterns, File > Open
    (napari's own GUI path) and viewer.open(plugin=None) read with the plugin and never ask; without the
    preference napari asks (its 'Choose reader' dialog)."""
    import re
    from pathlib import Path

    from napari._qt import qt_viewer as qt_viewer_module
    from napari.settings import get_settings

    asked: list = []
    monkeypatch.setattr(qt_viewer_module, "handle_gui_reading", lambda paths, *args, **kwargs: asked.append(paths))
    viewer = make_napari_viewer()
    qt = viewer.window._qt_viewer
    qt._qt_open([str(brats18_case)], stack=False)
    assert asked and not viewer.layers  # napari's builtin reader claims the folder too: it asks
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    patterns = re.search(r'for pattern in \(([^)]*)\)', readme).group(1)
    ours = {p.strip().strip('"'): PLUGIN for p in patterns.split(",")}
    assert "*/Brats*/" in ours and "*.nii.gz" in ours
    settings = get_settings()
    settings.plugins.extension2reader = {**settings.plugins.extension2reader, **ours}  # make_napari_viewer resets it
    asked.clear()
    qt._qt_open([str(brats18_case)], stack=False)  # File > Open Folder / drag and drop
    qt._qt_open([str(brats18_case / f"{BRATS18_CASE}_t1.nii.gz")], stack=False)
    viewer.open(str(lgg_patient), plugin=None)
    assert not asked
    kinds = {layer.name: layer.metadata["brainseg"]["kind"] for layer in viewer.layers}
    assert kinds[f"{BRATS18_CASE} flair"] == "brats_image" and kinds[f"{BRATS18_CASE}_t1"] == "nifti_image"
    assert kinds[f"{LGG_PATIENT} FLAIR"] == "lgg_image"


def test_readme_menu_names_are_the_ones_napari_shows(make_napari_viewer):
    """Issue 17 (6): every *File > ...* / *Plugins > ...* path the README names is in napari's menus."""
    import re
    from pathlib import Path

    viewer = make_napari_viewer()
    shown: list[str] = []

    def walk(menu, path):
        for action in menu.actions():
            text = action.text().replace("&", "")
            if action.menu():
                walk(action.menu(), [*path, text])
            elif text:
                shown.append(" > ".join([*path, text]))

    for action in viewer.window._qt_window.menuBar().actions():
        if action.menu():
            walk(action.menu(), [action.text().replace("&", "")])
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    named = {re.sub(r"\s+", " ", m) for m in re.findall(r"\*((?:File|Plugins) >[^*]+)\*", readme)}
    assert "Plugins > Brain tumour segmentation for BraTS and LGG MRI > Segment tumour" in named
    for path in named:
        assert any(entry == path or entry.startswith(path + " > ") or path.startswith(entry + " > ")
                   for entry in shown), path
