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


def without_paths(message: str, path) -> str:
    """``message`` less ``path``, its folder, its name and (for a folder) its files' names: the reason alone.

    Checking for "empty" or "truncated" in the whole message passes on a reason-less "<path>: could not
    open" whenever the word is in the file's or pytest's folder name.
    """
    path = Path(path)
    names = [str(path), str(path.parent), path.name] + ([p.name for p in path.iterdir()] if path.is_dir() else [])
    for name in sorted(names, key=len, reverse=True):
        message = message.replace(name, "")
    return message


def read_reason(path) -> str:
    """The reader's one-line error for ``path``, which must name the file (or a file in the folder), without the names."""
    message = read_error(path)
    named = [Path(path).name] + ([p.name for p in Path(path).iterdir()] if Path(path).is_dir() else [])
    assert any(name in message for name in named), message
    return without_paths(message, path)


def add_widget(viewer):
    """Dock the plugin's "Segment tumour" widget the way a user does (through the manifest)."""
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-brainseg", "Segment tumour")
    return widget


def shown_whole_in_a_toast(text: str) -> bool:
    """True when napari's own notification widget, drawn, shows ``text`` without eliding any of it."""
    from napari._qt.dialogs.qt_notification import NapariQtNotification
    from qtpy.QtWidgets import QApplication, QLabel

    note = NapariQtNotification(text, "error")
    note.show()
    QApplication.processEvents()
    try:
        return QLabel.text(note.message) == text  # QElidingLabel keeps the full text apart from what it draws
    finally:
        note.close()
        note.deleteLater()
