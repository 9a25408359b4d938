"""Case folders on disk: which kind a folder is, reading it, and writing a result next to it like the
case's own files. No model logic.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import BrainsegInputError
from ..limits import check_size


class CaseKind(str, Enum):
    """What a folder holds (``case_kind``) and what a read case is (``Case.kind``), as a string enum like
    ``conventions.Convention``: members compare equal to and serialise as their plain values."""

    BRATS = "brats"  # four modality volumes (a DICOM exam reads as one too)
    LGG = "lgg"  # a stack of 3-channel kaggle_3m slices
    DICOM = "dicom"  # a folder kind only: read_case turns the exam into a BRATS-kind case
    MSD = "msd"  # a file kind only: a Decathlon Task01 4D NIfTI file, read as a BRATS-kind case

    def __str__(self) -> str:
        return self.value


@runtime_checkable
class Case(Protocol):
    """What every kind of case offers the engine, the CLI and the API: a BraTS case, a DICOM exam, an LGG patient
    and the package's phantoms (``io.brats.BratsVolumes``, ``io.lgg.LggSlices``). The engine maps ``kind`` to its
    model (``engine.registry.model_for``); io knows nothing of models."""

    kind: CaseKind  # BRATS (4 modality volumes) or LGG (3-channel slices)
    label_convention: str  # the convention of the case's own label files (conventions.Convention)
    spacing: tuple[float, ...] | None  # mm per spatial axis; None when the files do not say
    affine: np.ndarray | None  # 4x4 NIfTI affine of the (z, y, x) grid's i, j, k axes; None when unknown
    warnings: list[str]  # what reading the case changed or assumed, one line each
    transforms: dict  # modality -> rigid co-registration applied onto the reference (empty when none)

    @property
    def name(self) -> str: ...  # the case or patient id

    def model_input(self) -> np.ndarray: ...  # channels in the dataset's canonical order

    def overlay_image(self) -> np.ndarray: ...  # the image results are drawn on (FLAIR)

    def output_paths(self, output_dir) -> list[Path]: ...  # what write_labels writes

    def write_labels(self, labels: np.ndarray, output_dir, *, overwrite: bool = False) -> list[str]: ...


def case_kind(path) -> CaseKind | None:
    """BRATS for a BraTS case folder, LGG for an LGG patient folder, DICOM for a DICOM exam, MSD for a
    Decathlon Task01 4D file (the four modalities in one file), else None."""
    from .brats import find_case_files
    from .dicom import is_dicom_exam
    from .lgg import find_patient_slices
    from .msd import is_msd_file

    path = Path(path)
    if is_msd_file(path):
        return CaseKind.MSD
    if not path.is_dir():
        return None
    if find_case_files(path) is not None:
        return CaseKind.BRATS
    if find_patient_slices(path) is not None:
        return CaseKind.LGG
    if is_dicom_exam(path):
        return CaseKind.DICOM
    return None


def read_case(path, *, series=None, reference: str = "flair", register: bool = False) -> Case:
    """A BraTS case folder, a DICOM exam or a Decathlon 4D file -> ``BratsCase``; an LGG patient folder -> ``LggCase``.

    ``reference``: the modality whose grid the others are resampled onto; ``register``: rigidly
    co-register them to it first; ``series`` (DICOM): {"flair": "SE002", ...} picks series by hand.
    """
    from .brats import read_brats_case
    from .dicom import read_dicom_exam
    from .lgg import read_lgg_patient

    kind = case_kind(path)
    if kind in (CaseKind.BRATS, CaseKind.LGG, CaseKind.MSD):
        _check_case_size(Path(path), kind)
    if kind == CaseKind.BRATS:
        return read_brats_case(path, require_all=True, reference=reference, register=register)
    if kind == CaseKind.LGG:
        return read_lgg_patient(path)
    if kind == CaseKind.DICOM:
        return read_dicom_exam(path, series, reference=reference, register=register)
    if kind == CaseKind.MSD:
        from .msd import read_msd_case

        return read_msd_case(path)
    raise BrainsegInputError(
        f"{path}: not a BraTS case folder, an LGG patient folder, a DICOM exam or a 4D NIfTI file with the four "
        "BraTS modalities"
    )


def _check_case_size(path: Path, kind: CaseKind) -> None:
    """The size guard from the files' headers alone, so an over-large case is refused before it is read."""
    if kind == CaseKind.MSD:
        import nibabel as nib

        check_size(nib.load(str(path)).shape[:3], path.name)
        return
    if kind == CaseKind.BRATS:
        import nibabel as nib

        from .brats import find_case_files

        first = next(iter(find_case_files(path).images.values()), None)
        if first is None:
            return
        try:
            shape = nib.load(str(first)).shape  # header only: the data stays on disk
        except Exception:
            return  # unreadable: read_brats_case reports it with the file name
        check_size(shape[:3], f"{first.name}")
        return
    import tifffile

    from .lgg import find_patient_slices

    slices = find_patient_slices(path)
    try:
        with tifffile.TiffFile(str(slices[0].image)) as tif:
            plane = tif.pages.first.shape[:2]
    except Exception:
        return
    check_size((len(slices), *plane), f"{path.name} ({len(slices)} slices)")


def write_result(result, case: Case, output_dir, *, overwrite: bool = False) -> list[str]:
    """Write labels like the case's own files into ``output_dir`` (created if missing); atomic (temp
    name + rename); refuses to overwrite.

    BraTS case C -> ``output_dir/C.nii.gz`` (uint8, the case's affine and header); LGG patient P ->
    ``output_dir/P/P_<n>_mask.tif`` (uint8 0/255) for every slice n.
    """
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise BrainsegInputError(f"{output_dir}: the output path is a file, not a folder")
    output_dir.mkdir(parents=True, exist_ok=True)  # as the CLI's --output
    return case.write_labels(result.labels, output_dir, overwrite=overwrite)
