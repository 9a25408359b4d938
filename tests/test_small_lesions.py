"""Keeping small lesions: the model's small-component cleanup (chosen by cross-validation on mostly
single-lesion cohorts) can be skipped from the API, the widget's job and the CLI.

The LGG phantom has one large lesion and two satellites (249 and 607 voxels, under 30 % of the large
one): the shipped ensemble finds all three, and its cleanup drops both satellites.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage

from napari_brainseg.engine.registry import get_spec
from napari_brainseg.engine.segment import segment
from napari_brainseg.phantoms import make_lgg_phantom

MODEL = "lgg-unet2d"


@pytest.fixture(scope="module")
def phantom():
    return make_lgg_phantom()


def _lesions(mask: np.ndarray) -> list[np.ndarray]:
    """The truth's lesions (3D connected components, 26-connectivity as the cleanup uses), largest first."""
    labelled, count = ndimage.label(mask > 0, structure=np.ones((3, 3, 3), bool))
    lesions = [labelled == i for i in range(1, count + 1)]
    return sorted(lesions, key=lambda m: -m.sum())


def test_phantom_has_satellites_the_cleanup_drops(phantom):
    fraction = get_spec(MODEL).min_component_fraction
    main, *satellites = _lesions(phantom.mask)
    assert len(satellites) == 2 and all(s.sum() < fraction * main.sum() for s in satellites)


def test_keep_small_lesions_labels_the_satellites(phantom):
    main, *satellites = _lesions(phantom.mask)
    default = segment(phantom, MODEL, tta=False)
    kept = segment(phantom, MODEL, tta=False, keep_small_lesions=True)
    assert (default.labels[main] > 0).mean() > 0.9
    assert all(not (default.labels[s] > 0).any() for s in satellites)
    assert all((kept.labels[s] > 0).mean() > 0.5 for s in satellites)
    assert np.all(kept.labels[default.labels > 0] > 0)  # the cleanup only removes
    assert default.settings["keep_small_lesions"] is False
    assert default.settings["min_component_fraction"] == get_spec(MODEL).min_component_fraction
    assert kept.settings["keep_small_lesions"] is True and kept.settings["min_component_fraction"] is None
    assert kept.method.endswith(", small lesions kept") and "small lesions" not in default.method


def test_widget_job_keeps_small_lesions(phantom):
    """The dock's checkbox travels as the job's settings (plugin/job.py) into segment()."""
    from napari.layers import Image, Labels

    from napari_brainseg.plugin.case_match import cases_of, pick_brats, pick_lgg
    from napari_brainseg.plugin.job import collect_job, compute
    from napari_brainseg.plugin.sample_data import lgg_phantom_layers

    layers = [{"image": Image, "labels": Labels}[kind](data, **kwargs) for data, kwargs, kind in lgg_phantom_layers()]
    images = [layer for layer in layers if isinstance(layer, Image)]
    (case,) = cases_of(images)
    job = collect_job(MODEL, pick_brats(images, case), pick_lgg(images, case), layers, device="cpu", tta=False,
                      fast=False, settings={"keep_small_lesions": True})  # the 2.5D fold network of fast misses one
    result, layer = compute(job, lambda done, total: None, lambda: False)
    _, *satellites = _lesions(phantom.mask)
    assert result.settings["keep_small_lesions"] is True
    assert all((layer.data[s] > 0).any() for s in satellites)


def test_widget_checkbox_sets_the_job(make_napari_viewer, monkeypatch):
    from napari_brainseg.plugin.sample_data import lgg_phantom_layers

    from .helpers import add_widget

    viewer = make_napari_viewer()
    for data, kwargs, kind in lgg_phantom_layers():
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    widget = add_widget(viewer)
    started = []
    # on the class: undoing an instance attribute of a magicgui Container would remove a widget by that name
    monkeypatch.setattr(type(widget), "_start", lambda self, job: started.append(job))
    assert widget.keep_small.value is False
    widget.keep_small.value = True
    widget.run()
    (job,) = started
    assert job.settings["keep_small_lesions"] is True


def test_cli_keep_small_lesions_says_so(lgg_patient, tmp_path):
    out = subprocess.run([sys.executable, "-m", "napari_brainseg.cli", "predict", str(lgg_patient), "--output",
                          str(tmp_path), "--fast", "--keep-small-lesions", "--no-overlay"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    line = next(li for li in out.stderr.splitlines() if li.startswith(lgg_patient.name + ":"))
    assert "1 network (fast), small lesions kept" in line
