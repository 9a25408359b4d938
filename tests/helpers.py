"""Small helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_brainseg.errors import BrainsegInputError
from napari_brainseg.plugin.readers import get_reader
from napari_brainseg.conventions import brats_labels_to_regions
from napari_brainseg.engine.metrics import dice_per_channel


def layers_by_name(layers) -> dict:
    return {kwargs["name"]: (data, kwargs, kind) for data, kwargs, kind in layers}


def nibabel_zyx(path) -> np.ndarray:
    """What nibabel reads, in napari (z, y, x) order - the reference the readers must match."""
    return np.asarray(nib.load(str(path)).dataobj).transpose(2, 1, 0)


def gunzip(src: Path, dest: Path) -> Path:
    with gzip.open(src, "rb") as fin, open(dest, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    return dest


def copy_case(src: Path, dest: Path, *, skip=(), rename=None) -> Path:
    """Copy a case folder's files, leaving out names containing any of ``skip``."""
    dest.mkdir(parents=True)
    for path in sorted(src.iterdir()):
        if any(s in path.name for s in skip):
            continue
        shutil.copy(path, dest / (rename(path.name) if rename else path.name))
    return dest


def read_error(path) -> str:
    """The one-line BrainsegInputError the plugin's reader gives for ``path`` (which it must claim)."""
    reader = get_reader(str(path))
    assert reader is not None, f"plugin should claim {path} to report the problem"
    with pytest.raises(BrainsegInputError) as info:
        reader(str(path))
    message = str(info.value)
    assert "\n" not in message and len(message) < 300, message
    return message


def add_widget(viewer):
    """Dock the plugin's "Segment tumour" widget the way a user does (through the manifest)."""
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-brainseg", "Segment tumour")
    return widget


def wt_dice(pred, truth, convention="brats2018") -> float:
    """Whole-tumour Dice of two BraTS label maps in ``convention``."""
    return dice_per_channel(*(brats_labels_to_regions(a, convention)[1:2] for a in (pred, truth)))[0]
