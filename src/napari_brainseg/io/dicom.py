"""DICOM MR exams: an exam folder (series in subfolders, or mixed files) read as a BraTS-like case.

pydicom reads the headers (which series, its description); SimpleITK (GDCM) reads each series into
a volume with its LPS geometry, which becomes a NIfTI (RAS) affine so the rest of the package treats
a series like a NIfTI file. Series are recognised as FLAIR / T1 / T1 post-contrast / T2 from their
SeriesDescription or ProtocolName; ``overrides`` ({"flair": "SE002"}) pick a series by folder
name, series number, description or UID. Series on other grids are resampled onto the reference
series (``grids``), exactly as for NIfTI cases.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BrainsegInputError, first_line
from .brats import MODALITIES, BratsCase, BratsCaseFiles, on_reference_grid
from .listing import is_hidden, visible_files
from .nifti import Volume, napari_to_nifti

# checked in this order: "T2 FLAIR" is FLAIR, "T1 post Gd" is T1ce before it is T1
_PATTERNS = (
    ("flair", re.compile(r"flair|dark.?fluid", re.IGNORECASE)),
    ("t1ce", re.compile(r"t1.*(post|\+ ?c\b|gd|gado|contrast|\bce\b|\bc\b)|(post|gd|\+c).*t1|\bt1c|t1ce|mprage.*post", re.IGNORECASE)),
    ("t2", re.compile(r"t2", re.IGNORECASE)),
    ("t1", re.compile(r"t1|mprage|spgr", re.IGNORECASE)),
)
MODALITY_NAMES = {"flair": "FLAIR", "t1": "T1", "t1ce": "T1 post-contrast", "t2": "T2"}


@dataclass
class DicomSeries:
    uid: str
    folder: Path
    files: list[str]  # sorted by slice position (GDCM)
    description: str  # SeriesDescription, else ProtocolName
    number: int | None
    study_uid: str = ""
    header: object = field(default=None, repr=False)  # pydicom dataset of the first file (no pixels)

    @property
    def label(self) -> str:
        return f"{self.short_label} ({self.folder.name}, {len(self.files)} images)"

    @property
    def short_label(self) -> str:
        number = f"#{self.number} " if self.number is not None else ""
        return f"{number}'{self.description}'"


def is_dicom_file(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def _dicom_files(folder: Path, first_only: bool = False) -> list[Path]:
    found = []
    try:
        for path in visible_files(folder):
            if is_dicom_file(path):
                found.append(path)
                if first_only:
                    break
    except OSError:
        pass
    return found


def _study_uid(path: Path) -> str:
    import pydicom

    try:
        return str(pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["StudyInstanceUID"]).StudyInstanceUID)
    except Exception:  # noqa: BLE001 - pydicom raises many types for a broken file: no study then
        return ""


def is_dicom_exam(folder) -> bool:
    """A folder holding DICOM files, or whose subfolders hold the series of one study."""
    folder = Path(folder)
    if not folder.is_dir():
        return False
    if _dicom_files(folder, first_only=True):
        return True
    firsts = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not is_hidden(p)):
        files = _dicom_files(sub, first_only=True)
        if files:
            firsts.append(files[0])
    return bool(firsts) and len({_study_uid(f) for f in firsts}) == 1


def find_series(folder) -> list[DicomSeries]:
    """Every image series in an exam folder (and its subfolders), in series-number order."""
    import pydicom
    import SimpleITK as sitk

    folder = Path(folder)
    found = []
    subfolders = sorted(p for p in folder.rglob("*") if p.is_dir() and not any(is_hidden(q) for q in p.relative_to(folder).parts))
    for directory in [folder, *subfolders]:
        if not _dicom_files(directory, first_only=True):
            continue
        for uid in sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(directory)) or ():
            files = list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(directory), uid))
            try:
                header = pydicom.dcmread(files[0], stop_before_pixels=True)
            except Exception as exc:  # noqa: BLE001 - pydicom raises many types; one line for the user
                raise BrainsegInputError(f"{files[0]}: not a readable DICOM file ({first_line(exc)})") from None
            if "ImagePositionPatient" not in header:
                continue  # reports, presentation states, a previous SEG: not an image series
            description = str(header.get("SeriesDescription", "") or header.get("ProtocolName", "") or "")
            number = header.get("SeriesNumber")
            found.append(DicomSeries(uid, directory, files, description, int(number) if number is not None else None,
                                     str(header.get("StudyInstanceUID", "")), header))
    if not found:
        raise BrainsegInputError(f"{folder}: no DICOM image series in this folder")
    return sorted(found, key=lambda s: (s.number is None, s.number or 0, s.description))


def guess_modality(description: str) -> str | None:
    for modality, pattern in _PATTERNS:
        if pattern.search(description or ""):
            return modality
    return None


def _matches(series: DicomSeries, key: str) -> bool:
    """``key`` is the series' folder name, description, UID, or its number ("SE002", "series 2", "2")."""
    key = key.strip().lower()
    if key in (series.folder.name.lower(), series.description.lower(), series.uid.lower()):
        return True
    number = re.fullmatch(r"(?:se|series)?[ _#-]*0*(\d+)", key)
    return number is not None and series.number == int(number.group(1))


def assign_series(series: list[DicomSeries], overrides: dict[str, str] | None = None) -> tuple[dict, list[str]]:
    """modality -> series (from the overrides, then the descriptions), and one line per assignment."""
    chosen: dict[str, DicomSeries] = {}
    for modality, key in (overrides or {}).items():
        if modality not in MODALITIES:
            raise BrainsegInputError(f"--series {modality}={key}: unknown modality; use flair, t1, t1ce or t2")
        hits = [s for s in series if _matches(s, key)]
        if len(hits) != 1:
            listing = "; ".join(s.label for s in series)
            what = "no series" if not hits else f"{len(hits)} series"
            raise BrainsegInputError(f"--series {modality}={key}: {what} match; the exam holds {listing}")
        chosen[modality] = hits[0]
    for s in series:
        modality = guess_modality(s.description)
        if modality is not None and modality not in chosen and s not in chosen.values():
            chosen[modality] = s
    lines = [f"{MODALITY_NAMES[m]}: series {chosen[m].label}" for m in MODALITIES if m in chosen]
    missing = [m for m in MODALITIES if m not in chosen]
    if missing:
        names = ", ".join(MODALITY_NAMES[m] for m in missing)
        listing = "; ".join(s.label for s in series)
        raise BrainsegInputError(
            f"no {names} series recognised among {listing}; name it with --series {missing[0]}=<folder, number or description>"
        )
    return chosen, lines


def read_series(series: DicomSeries) -> Volume:
    """A series as a napari-order volume with a NIfTI (RAS) affine and header."""
    import nibabel as nib
    import SimpleITK as sitk

    from ..limits import check_size
    from .grids import affine_from_sitk

    header = series.header
    check_size((len(series.files), int(header.get("Rows", 0)), int(header.get("Columns", 0))), f"series {series.label}")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(series.files)
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise BrainsegInputError(f"{series.folder}: cannot read series {series.label} ({first_line(exc)})") from None
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise BrainsegInputError(f"{series.folder}: series {series.label} is not a 3D grey-level volume")
    data = sitk.GetArrayFromImage(image)  # (z, y, x): napari order, x along the DICOM rows
    affine = affine_from_sitk(image)
    nifti_header = nib.Nifti1Image(napari_to_nifti(data), affine).header
    nifti_header.set_xyzt_units("mm")
    return Volume(data=data, affine=affine, header=nifti_header, path=Path(series.files[0]))


def read_dicom_exam(folder, overrides=None, *, reference: str = "flair", register: bool = False) -> BratsCase:
    """An exam folder -> a BratsCase on the reference series' grid; ``warnings`` say which series
    became which modality and what was resampled."""
    folder = Path(folder)
    if reference not in MODALITIES:
        raise BrainsegInputError(f"unknown reference series {reference!r}; choose one of {', '.join(MODALITIES)}")
    chosen, lines = assign_series(find_series(folder), overrides)
    volumes = {m: read_series(chosen[m]) for m in MODALITIES}
    warnings = list(lines)
    names = {m: f"the {MODALITY_NAMES[m]} series {chosen[m].short_label}" for m in MODALITIES}
    images, transforms = on_reference_grid(volumes, reference, register, warnings, names)
    files = BratsCaseFiles(folder, folder.name, "2018", {}, None)
    return BratsCase(folder.name, "2018", images, None, volumes[reference], files, warnings, transforms, chosen)


def napari_affine(affine: np.ndarray) -> np.ndarray:
    """NIfTI (RAS, i j k) affine -> napari layer affine of the (z, y, x) axes into DICOM patient (LPS)
    coordinates listed (S, P, L): an axial LPS series is then a plain scale and translate."""
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])  # RAS -> LPS
    reverse = np.eye(4)[[2, 1, 0, 3]]
    return reverse @ flip @ np.asarray(affine) @ reverse
