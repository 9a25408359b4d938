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

from ..conventions import Convention
from ..errors import BrainsegInputError
from .cases import CaseKind
from .grids import describe_difference, onto_grid, register_rigid, same_grid
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
LABEL_CONVENTION = {"2018": Convention.BRATS2018, "2023": Convention.BRATS2023}
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


class BratsVolumes:
    """The :class:`~napari_brainseg.io.cases.Case` protocol for four co-registered modality volumes.

    Subclasses give ``case_id``, ``images`` (canonical modality -> (z, y, x)), ``affine``, ``spacing``,
    ``label_convention``, ``stacked()`` and ``nifti_header()``; a BraTS case and the BraTS phantom do.
    """

    kind = CaseKind.BRATS

    @property
    def name(self) -> str:
        return self.case_id

    def model_input(self) -> np.ndarray:
        """(4, z, y, x) float32 in the canonical modality order."""
        return self.stacked()

    def overlay_image(self) -> np.ndarray:
        return self.images["flair"]  # the sequence the tumour is outlined on

    def output_paths(self, output_dir) -> list[Path]:
        return [Path(output_dir) / f"{self.case_id}.nii.gz"]

    def write_labels(self, labels: np.ndarray, output_dir, *, overwrite: bool = False) -> list[str]:
        """``output_dir/<case>.nii.gz``: uint8, the case's affine and header."""
        from .writer import write_labels_nifti

        grid = next(iter(self.images.values())).shape
        if labels.shape != grid:
            raise BrainsegInputError(f"{self.case_id}: labels shape {labels.shape} differs from the case grid")
        meta = {"nifti_affine": self.affine, "nifti_header": bytes(self.nifti_header().binaryblock)}
        [path] = self.output_paths(output_dir)
        return [write_labels_nifti(path, labels, meta, overwrite=overwrite)]


@dataclass
class BratsCase(BratsVolumes):
    """A BraTS case in napari order (z, y, x); all volumes share one grid and affine."""

    case_id: str
    convention: str
    images: dict[str, np.ndarray]  # canonical modality -> (z, y, x) array, stored dtype
    seg: np.ndarray | None  # (z, y, x) uint8 labels in the case's own convention
    reference: Volume  # geometry of the first image (affine, header, spacing)
    files: BratsCaseFiles
    warnings: list[str] = field(default_factory=list)
    transforms: dict = field(default_factory=dict)  # modality -> rigid co-registration onto the reference
    series: dict = field(default_factory=dict)  # DICOM exams: modality -> its source series (io.dicom)

    @property
    def label_convention(self) -> str:
        return LABEL_CONVENTION[self.convention]

    @property
    def spacing(self) -> tuple[float, float, float]:
        return self.reference.spacing

    @property
    def affine(self) -> np.ndarray:
        return self.reference.affine

    def nifti_header(self):
        return self.reference.header

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


def read_brats_case(
    folder: str | Path, *, require_all: bool = False, reference: str = "flair", register: bool = False
) -> BratsCase:
    """Read every modality present (and the segmentation); warn about missing ones.

    Modalities on another grid than the ``reference`` one (FLAIR by default; the first present if
    it is missing) are resampled onto it by their world coordinates, and with ``register`` every
    other modality is rigidly co-registered to it (SimpleITK); each change is one line in
    ``warnings`` and a registration's transform is kept in ``transforms``.
    """
    files = find_case_files(folder)
    if files is None:
        raise BrainsegInputError(f"{folder}: not a BraTS case folder (no <case>_flair.nii.gz or <case>-t2f.nii.gz ...)")
    if not files.images:
        raise BrainsegInputError(f"{files.folder}: only a segmentation, no image modality")
    if reference not in MODALITIES:
        raise BrainsegInputError(f"unknown reference modality {reference!r}; choose one of {', '.join(MODALITIES)}")
    warnings = []
    if files.missing:
        names = ", ".join(f"{m} ({SUFFIX_FOR[files.convention][m]})" for m in files.missing)
        if require_all:
            raise BrainsegInputError(f"{files.folder}: missing modality {names}")
        warnings.append(f"{files.folder.name}: missing modality {names}")
    if files.other_segs:
        others = ", ".join(p.name for p in files.other_segs)
        warnings.append(f"{files.folder.name}: two segmentation files; {files.seg.name} is the ground truth (for the Dice), {others} is ignored")
    volumes = {}
    for modality, path in files.images.items():
        volume = read_nifti(path)
        if volume.data.ndim != 3:
            raise BrainsegInputError(f"{path}: expected a 3D volume, found shape {volume.data.shape}")
        volumes[modality] = volume
    ref_name = reference if reference in volumes else next(iter(volumes))
    images, transforms = on_reference_grid(volumes, ref_name, register, warnings)
    seg = None
    if files.seg is not None:
        seg = read_seg(files.seg)  # labels are never resampled: a segmentation must lie on the reference grid
        if seg.shape != volumes[ref_name].data.shape:
            raise BrainsegInputError(
                f"{files.seg}: segmentation shape {seg.shape} differs from the images' {volumes[ref_name].data.shape}"
            )
    return BratsCase(files.case_id, files.convention, images, seg, volumes[ref_name], files, warnings, transforms)


def on_reference_grid(volumes: dict, ref_name: str, register: bool, warnings: list,
                      names: dict | None = None) -> tuple[dict, dict]:
    """Modality -> (z, y, x) array, every one on the grid of ``volumes[ref_name]``; ``names`` (modality ->
    how the warnings name it) default to the file names."""
    reference = volumes[ref_name]
    images, transforms = {}, {}
    for modality, volume in volumes.items():
        name = (names or {}).get(modality) or (volume.path.name if volume.path is not None else modality)
        if modality == ref_name:
            images[modality] = volume.data
        elif register:
            images[modality], transforms[modality] = register_rigid(volume, reference)
            shift = ", ".join(f"{t:.1f}" for t in transforms[modality]["translation_mm"])
            warnings.append(f"{name}: rigidly co-registered to {ref_name} (shift {shift} mm)")
        elif same_grid(volume, reference):
            images[modality] = volume.data
        else:
            images[modality] = onto_grid(volume, reference)
            warnings.append(describe_difference(volume, reference, name, ref_name))
    return {m: images[m] for m in MODALITIES if m in images}, transforms
