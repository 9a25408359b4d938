"""Training data: case lists, the round-1 split and a compact preprocessed cache.

The cache holds exactly what inference feeds the network (``napari_brainseg.engine.preprocess``):
LGG stacks z-scored per patient, BraTS volumes cropped to the brain and z-scored, both stored as
float16 in compressed ``.npz`` files so that data loading stays off the 2-core critical path.
Cases are read with the package's own readers, i.e. in the layouts users have on disk.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from napari_brainseg.conventions import brats_labels_to_regions, convert_brats_labels
from napari_brainseg.engine.preprocess import preprocess_brats, preprocess_lgg, reorient
from napari_brainseg.io.brats import find_case_files, read_brats_case
from napari_brainseg.io.lgg import PATIENT_FOLDER, read_lgg_patient

HERE = Path(__file__).parent
SPLIT_FILE = HERE / "split.json"  # round 1's single train/validation split (the shipped models)
BRATS_ORIENTATION = "LPS"  # BraTS 2018-2021 files are stored LPS; others (BraTS-Africa: RAS) are reoriented


def data_root() -> Path:
    return Path(os.environ.get("BRAINSEG_DATA", HERE.parent.parent / "shared" / "data"))


def list_lgg_patients(root: Path) -> dict[str, Path]:
    folder = root / "lgg" / "kaggle_3m"
    return {p.name: p for p in sorted(folder.iterdir()) if p.is_dir() and PATIENT_FOLDER.match(p.name)}


def list_brats_cases(roots: list[Path]) -> dict[str, Path]:
    """Labelled BraTS case folders under each root (searched recursively, one level of years)."""
    cases = {}
    for root in roots:
        for folder in sorted(root.glob("**/")):
            files = find_case_files(folder) if folder.is_dir() else None
            if files is not None and files.seg is not None and not files.missing:
                cases[files.case_id] = folder
    return cases


def make_split(names: list[str], val_fraction: float, seed: int) -> dict[str, list[str]]:
    rng = np.random.default_rng(seed)
    order = list(rng.permutation(sorted(names)))
    n_val = max(1, int(round(len(order) * val_fraction)))
    return {"train": sorted(order[n_val:]), "val": sorted(order[:n_val])}


def load_split(dataset: str) -> dict[str, list[str]]:
    return json.loads(SPLIT_FILE.read_text())[dataset]


def cases_of_config(cfg: dict, split: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    """The training and validation cases a config uses: the split, optionally truncated or named."""
    train = cfg.get("train_cases") or split["train"][: cfg.get("limit_train") or None]
    val = cfg.get("val_cases") or split["val"][: cfg.get("limit_val") or None]
    return list(train), list(val)


def cache_lgg(folder: Path, out: Path) -> None:
    case = read_lgg_patient(folder)
    image = preprocess_lgg(case.image).astype(np.float16)  # (Z, 3, H, W)
    np.savez_compressed(out, image=image, label=case.mask.astype(np.uint8))


def cache_brats(folder: Path, out: Path) -> None:
    case = read_brats_case(folder, require_all=True)
    stack, _ = reorient(case.stacked(), case.affine, BRATS_ORIENTATION)
    seg = reorient(case.seg[None], case.affine, BRATS_ORIENTATION)[0][0]
    image, box = preprocess_brats(stack)
    start, end = box
    seg = seg[tuple(slice(s, e) for s, e in zip(start, end))]
    # always store 2018 label values so regions are computed one way
    seg = convert_brats_labels(seg, case.label_convention, "brats2018")
    np.savez_compressed(out, image=image.astype(np.float16), label=seg.astype(np.uint8), box=np.array(box))


def load_cached(path: Path, dataset: str) -> dict:
    with np.load(path) as f:
        image = f["image"].astype(np.float32)
        label = f["label"]
    if dataset == "brats":
        label = brats_labels_to_regions(label, "brats2018").astype(np.uint8)  # (3, z, y, x) TC, WT, ET
    return {"image": image, "label": label, "name": path.stem}
