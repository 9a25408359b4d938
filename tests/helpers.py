"""Small helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np


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
