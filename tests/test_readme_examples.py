"""The README's Python examples, run as written on real data, so they stay true.

Each ```python block is executed in a folder where the README's relative paths (`Brats18_2013_20_1/`,
`kaggle_3m/...`, `out/`) point at the real cases; `napari.Viewer()` is the test's viewer and
`napari.run()` returns at once.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from .model_card import BRATS_VAL_CASE, LGG_VAL_PATIENT, assert_matches_card, brats_dice, lgg_dice

README = Path(__file__).resolve().parents[1] / "README.md"


def python_block_after(heading: str) -> str:
    text = README.read_text()
    start = text.index(heading)
    match = re.compile(r"```python\n(.*?)```", re.S).search(text, start)
    assert match, f"no python block after {heading!r} in README.md"
    return match.group(1)


@pytest.fixture
def readme_folder(tmp_path, monkeypatch, brats18_case, data_dir):
    assert brats18_case.name == BRATS_VAL_CASE == "Brats18_2013_20_1"  # the case the README names
    (tmp_path / BRATS_VAL_CASE).symlink_to(brats18_case, target_is_directory=True)
    (tmp_path / "kaggle_3m").symlink_to(data_dir / "lgg" / "kaggle_3m", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def readme_viewer(make_napari_viewer, monkeypatch):
    import napari

    viewer = make_napari_viewer()
    monkeypatch.setattr(napari, "Viewer", lambda *args, **kwargs: viewer)
    monkeypatch.setattr(napari, "run", lambda *args, **kwargs: None)
    return viewer


def run_block(heading: str) -> dict:
    namespace: dict = {}
    exec(compile(python_block_after(heading), f"README.md ({heading})", "exec"), namespace)
    return namespace


def test_opening_from_python(readme_folder, readme_viewer):
    run_block("**Making napari-brainseg the preferred reader.**")
    names = [layer.name for layer in readme_viewer.layers]
    assert f"{BRATS_VAL_CASE} flair" in names and "TCGA_CS_4941_19960909 FLAIR" in names
    assert any("phantom" in name.lower() for name in names)


def test_scripted_use_helpers(readme_folder):
    ns = run_block("## Scripted use")
    assert ns["case"].seg is not None and (readme_folder / "out" / "edited_seg.nii.gz").is_file()
    assert (readme_folder / "out" / "sample").is_dir()


def test_segmentation_from_python(readme_folder):
    ns = run_block("Segmentation from Python (arrays")
    case, lgg = ns["case"], ns["lgg"]
    assert ns["result"].labels.shape == (155, 240, 240) and (readme_folder / "out" / f"{BRATS_VAL_CASE}.nii.gz").is_file()
    assert_matches_card("brats-unet3d", BRATS_VAL_CASE, brats_dice(ns["result"].labels, case.seg, case.label_convention))
    assert set(np.unique(ns["labels"])) <= {0, 1, 2, 3} and 3 in ns["labels"]  # the 2023 convention
    assert_matches_card("brats-unet3d", BRATS_VAL_CASE, brats_dice(ns["labels"], case.seg, "brats2023", case.label_convention))
    assert lgg.patient_id == LGG_VAL_PATIENT and ns["mask"].shape == lgg.image.shape[:3]
    assert set(np.unique(ns["mask"])) <= {0, 1}
    assert_matches_card("lgg-unet2d", LGG_VAL_PATIENT, lgg_dice(ns["mask"], lgg.mask))
    # uncertainty runs every network under every flip, so its labels are the flip-TTA prediction; the default
    # has no TTA (cross-validation found it adds nothing for this ensemble), so only edge voxels may differ
    sure = ns["sure"]
    assert lgg_dice(sure.labels, ns["mask"])["dice"] > 0.99
    assert sure.check.region == "tumour" and sure.check.expected_dice == sure.expected_dice["tumour"]


def test_scripted_napari_session(readme_folder, readme_viewer):
    run_block("A scripted napari session:")
    layer = readme_viewer.layers[f"{BRATS_VAL_CASE} tumour (brats-unet3d)"]  # the name the widget gives
    flair = readme_viewer.layers[f"{BRATS_VAL_CASE} flair"]
    truth = readme_viewer.layers[f"{BRATS_VAL_CASE} seg"].data
    np.testing.assert_array_equal(layer.affine.affine_matrix, flair.affine.affine_matrix)
    np.testing.assert_allclose(layer.metadata["nifti_affine"], flair.metadata["nifti_affine"])
    assert layer.metadata["label_names"][4] == "enhancing tumour" and layer.metadata["model"] == "brats-unet3d"
    assert_matches_card("brats-unet3d", BRATS_VAL_CASE, brats_dice(layer.data, truth))


def test_write_result_refuses_a_file_as_output_folder(tmp_path):
    import napari_brainseg as nb
    from napari_brainseg.errors import BrainsegInputError
    from napari_brainseg.phantoms import write_lgg_phantom

    case = nb.read_case(write_lgg_phantom(tmp_path / "in"))
    result = nb.segment(case.image, device="cpu")
    (tmp_path / "taken").write_text("not a folder")
    with pytest.raises(BrainsegInputError, match="is a file, not a folder"):
        nb.write_result(result, case, tmp_path / "taken")
    written = nb.write_result(result, case, tmp_path / "new" / "deeper")
    assert written and all(Path(p).is_file() for p in written)
