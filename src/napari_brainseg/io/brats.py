"""BraTS case folders: one NIfTI per modality plus an optional segmentation.

Two namings exist: 2018-2021 ``<case>_{flair,t1,t1ce,t2,seg}.nii.gz`` and 2023+
``<case>-{t1n,t1c,t2w,t2f,seg}.nii.gz``. Both are read into the same canonical modality names
(flair, t1, t1ce, t2) so that the model and widget never care which year a case comes from; the
convention is remembered so results can be written back in the case's own label values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BrainsegInputError
from .listing import visible_files
from .nifti import Volume, is_nifti_path, read_nifti, strip_nifti_suffix

MODALITIES = ("flair", "t1", "t1ce", "t2")
# file suffix -> (convention, canonical modality or "seg")
_SUFFIXES = {
    "2018": {"flair": "flair", "t1": "t1", "t1ce": "t1ce", "t2": "t2", "seg": "seg"},
    "2023": {"t2f": "flair", "t1n": "t1", "t1c": "t1ce", "t2w": "t2", "seg": "seg"},
}
# the file suffix each convention uses for a canonical modality (for writing and for messages)
SUFFIX_FOR = {conv: {v: k for k, v in table.items()} for conv, table in _SUFFIXES.items()}
LABEL_CONVENTION = {"2018": "brats2018", "2023": "brats2023"}
_NAME = re.compile(r"^(?P<case>.+?)(?P<sep>[_-])(?P<suffix>flair|t1ce|t1|t2|seg|t1n|t1c|t2w|t2f)$", re.IGNORECASE)


def parse_brats_name(path: str | Path) -> tuple[str, str, str] | None:
    """``Brats18_X_flair.nii.gz`` -> (case id, convention, canonical modality or "seg"); else None."""
    name = Path(path).name
    if not is_nifti_path(name):
        return None
    match = _NAME.match(strip_nifti_suffix(name))
    if not match:
        return None
    suffix, sep = match["suffix"].lower(), match["sep"]
    if suffix in _SUFFIXES["2023"] and suffix != "seg" or (suffix == "seg" and sep == "-"):
        convention = "2023"
    else:
        convention = "2018"
    return match["case"], convention, _SUFFIXES[convention][suffix]


@dataclass
class BratsCaseFiles:
    folder: Path
    case_id: str
    convention: str  # "2018" or "2023"
    images: dict[str, Path]  # canonical modality -> file, in MODALITIES order
    seg: Path | None
    other_segs: list[Path] = field(default_factory=list)  # e.g. the .nii an unzipping tool left beside the .nii.gz

    @property
    def missing(self) -> list[str]:
        return [m for m in MODALITIES if m not in self.images]


def find_case_files(folder: str | Path) -> BratsCaseFiles | None:
    """Recognise a BraTS case folder; None when the folder holds no BraTS-named NIfTI file."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found: dict[str, tuple[str, str, Path]] = {}
    cases, conventions = set(), set()
    segs: list[Path] = []
    for path in visible_files(folder):
        parsed = parse_brats_name(path)
        if parsed is None:
            continue
        case_id, convention, modality = parsed
        if modality == "seg":  # not needed to segment: a second one is noted, never fatal
            segs.append(path)
            if "seg" in found:
                continue
        elif modality in found:
            raise BrainsegInputError(
                f"{folder}: two files for the {modality} modality ({found[modality][2].name}, {path.name})"
            )
        found[modality] = (case_id, convention, path)
        cases.add(case_id)
        conventions.add(convention)
    if not found:
        return None
    if len(cases) > 1:
        raise BrainsegInputError(f"{folder}: files of several cases in one folder ({', '.join(sorted(cases))})")
    if len(conventions) > 1:
        raise BrainsegInputError(f"{folder}: mixes 2018 (_flair) and 2023 (-t2f) file names")
    images = {m: found[m][2] for m in MODALITIES if m in found}
    seg = min(segs, key=lambda p: (not p.name.lower().endswith(".gz"), p.name)) if segs else None  # the original
    return BratsCaseFiles(folder, cases.pop(), conventions.pop(), images, seg, [p for p in segs if p != seg])


@dataclass
class BratsCase:
    """A BraTS case in napari order (z, y, x); all volumes share one grid and affine."""

    case_id: str
    convention: str
    images: dict[str, np.ndarray]  # canonical modality -> (z, y, x) array, stored dtype
    seg: np.ndarray | None  # (z, y, x) uint8 labels in the case's own convention
    reference: Volume  # geometry of the first image (affine, header, spacing)
    files: BratsCaseFiles
    warnings: list[str] = field(default_factory=list)

    @property
    def label_convention(self) -> str:
        return LABEL_CONVENTION[self.convention]

    @property
    def spacing(self) -> tuple[float, float, float]:
        return self.reference.spacing

    @property
    def affine(self) -> np.ndarray:
        return self.reference.affine

    def stacked(self, modalities=MODALITIES) -> np.ndarray:
        """(C, z, y, x) float32 in the given modality order; raises if one is missing."""
        missing = [m for m in modalities if m not in self.images]
        if missing:
            names = ", ".join(f"{m} ({SUFFIX_FOR[self.convention][m]})" for m in missing)
            raise BrainsegInputError(f"{self.files.folder}: missing modality {names}")
        return np.array([self.images[m] for m in modalities], dtype=np.float32)


def read_seg(path: Path) -> np.ndarray:
    """A segmentation volume as uint8 labels; refuses fractional or negative values."""
    volume = read_nifti(path)
    data = volume.data
    if data.ndim != 3:
        raise BrainsegInputError(f"{path}: a segmentation must be 3D, found shape {data.shape}")
    if not np.issubdtype(data.dtype, np.integer):
        if not np.all(np.isfinite(data)) or not np.array_equal(data, np.round(data)):
            raise BrainsegInputError(f"{path}: segmentation holds non-integer values")
    if data.min() < 0 or data.max() > 255:
        raise BrainsegInputError(f"{path}: segmentation labels outside 0..255 ({data.min()}..{data.max()})")
    return data.astype(np.uint8)


def read_brats_case(folder: str | Path, *, require_all: bool = False) -> BratsCase:
    """Read every modality present (and the segmentation); warn about missing ones.

    All volumes must share the first image's shape and affine: a case whose modalities are not
    co-registered cannot be segmented voxel-wise, so that is an error, not a warning.
    """
    files = find_case_files(folder)
    if files is None:
        raise BrainsegInputError(f"{folder}: not a BraTS case folder (no <case>_flair.nii.gz or <case>-t2f.nii.gz ...)")
    if not files.images:
        raise BrainsegInputError(f"{files.folder}: only a segmentation, no image modality")
    warnings = []
    if files.missing:
        names = ", ".join(f"{m} ({SUFFIX_FOR[files.convention][m]})" for m in files.missing)
        if require_all:
            raise BrainsegInputError(f"{files.folder}: missing modality {names}")
        warnings.append(f"{files.folder.name}: missing modality {names}")
    if files.other_segs:
        others = ", ".join(p.name for p in files.other_segs)
        warnings.append(f"{files.folder.name}: two segmentation files; {files.seg.name} is the ground truth (for the Dice), {others} is ignored")
    images: dict[str, np.ndarray] = {}
    reference: Volume | None = None
    for modality, path in files.images.items():
        volume = read_nifti(path)
        if volume.data.ndim != 3:
            raise BrainsegInputError(f"{path}: expected a 3D volume, found shape {volume.data.shape}")
        if reference is None:
            reference = volume
        else:
            _check_same_grid(reference, volume)
        images[modality] = volume.data
    seg = None
    if files.seg is not None:
        seg_volume_data = read_seg(files.seg)
        if seg_volume_data.shape != reference.data.shape:
            raise BrainsegInputError(
                f"{files.seg}: segmentation shape {seg_volume_data.shape} differs from the images' {reference.data.shape}"
            )
        seg = seg_volume_data
    return BratsCase(files.case_id, files.convention, images, seg, reference, files, warnings)


def _check_same_grid(reference: Volume, other: Volume) -> None:
    if other.data.shape != reference.data.shape:
        raise BrainsegInputError(
            f"{other.path}: shape {other.data.shape} differs from {reference.path.name} {reference.data.shape}"
        )
    if not np.allclose(other.affine, reference.affine, atol=1e-3):
        raise BrainsegInputError(f"{other.path}: affine differs from {reference.path.name} (not co-registered)")
